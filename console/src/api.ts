import {
  Client,
  CombinedError,
  fetchExchange,
  gql,
  type AnyVariables,
  type TypedDocumentNode,
} from '@urql/core';
import type {
  ApiKey,
  CellLabel,
  Metrics,
  ModelCharts,
  ModelVersion,
  MorphologyComparison,
  Prediction,
  PageInfo,
} from '../../src/generated/graphql';
import type { Session } from './session';

/**
 * Every call the console makes, through urql. Queries go as POST with a JSON body: Apollo's CSRF
 * prevention refuses "simple" GETs, and the API key header must never land in a URL. Nothing is
 * cached: presigned URLs expire, and a review queue must be read fresh.
 */
export function createClient(session: Session): Client {
  return new Client({
    url: session.apiUrl,
    exchanges: [fetchExchange],
    preferGetMethod: false,
    requestPolicy: 'network-only',
    fetchOptions: () => ({ headers: { 'x-api-key': session.apiKey } }),
  });
}

/** An error the page shows; `code` is the API's extensions.code when there is one. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly code: string | null,
  ) {
    super(message);
  }
}

function toApiError(error: CombinedError): ApiError {
  const first = error.graphQLErrors[0];
  if (first) return new ApiError(first.message, (first.extensions?.code as string | undefined) ?? null);
  return new ApiError(
    `The API could not be reached (${error.networkError?.message ?? error.message}).`,
    'NETWORK',
  );
}

export async function run<Data, Variables extends AnyVariables>(
  client: Client,
  kind: 'query' | 'mutation',
  document: TypedDocumentNode<Data, Variables>,
  variables: Variables,
): Promise<Data> {
  const result = await (
    kind === 'query' ? client.query(document, variables) : client.mutation(document, variables)
  ).toPromise();
  if (result.error) throw toApiError(result.error);
  if (!result.data) throw new ApiError('The API answered without data.', null);
  return result.data;
}

/**
 * Page sizes are written into the documents: the API prices a variable `first` at the largest page it
 * allows, which would put these queries over its cost limit.
 */
const QUEUE_PAGE = String(20);
const MODELS_PAGE = String(8);

// ------------------------------------------------------------------ who am I

export type Me = Pick<ApiKey, 'id' | 'name' | 'role'>;

const ME: TypedDocumentNode<{ me: Me | null }, Record<string, never>> = gql`
  query ConsoleMe {
    me {
      id
      name
      role
    }
  }
`;

export async function fetchMe(client: Client): Promise<Me> {
  const { me } = await run(client, 'query', ME, {});
  if (!me) throw new ApiError('This API key is not recognised.', 'UNAUTHENTICATED');
  return me;
}

// ------------------------------------------------------------------ review queue

export type QueueCell = Pick<
  Prediction,
  | 'id'
  | 'label'
  | 'probabilityAll'
  | 'threshold'
  | 'reviewReasons'
  | 'outOfDomainScore'
  | 'modelVersion'
  | 'imageUrl'
  | 'heatmapUrl'
  | 'createdAt'
> & {
  morphology: {
    comparisons: Array<
      Pick<
        MorphologyComparison,
        'feature' | 'value' | 'allMean' | 'normalMean' | 'zAll' | 'zNormal' | 'closerTo'
      >
    >;
  } | null;
};

export interface ReviewQueuePage {
  cells: QueueCell[];
  hasMore: boolean;
}

const REVIEW_QUEUE: TypedDocumentNode<
  { reviewQueue: { edges: Array<{ node: QueueCell }>; pageInfo: Pick<PageInfo, 'hasNextPage'> } },
  Record<string, never>
> = gql`
  query ConsoleReviewQueue {
    reviewQueue(first: ${QUEUE_PAGE}) {
      edges {
        node {
          id
          label
          probabilityAll
          threshold
          reviewReasons
          outOfDomainScore
          modelVersion
          imageUrl
          heatmapUrl
          createdAt
          morphology {
            comparisons {
              feature
              value
              allMean
              normalMean
              zAll
              zNormal
              closerTo
            }
          }
        }
      }
      pageInfo {
        hasNextPage
      }
    }
  }
`;

export async function fetchReviewQueue(client: Client): Promise<ReviewQueuePage> {
  const { reviewQueue } = await run(client, 'query', REVIEW_QUEUE, {});
  return { cells: reviewQueue.edges.map((e) => e.node), hasMore: reviewQueue.pageInfo.hasNextPage };
}

const SUBMIT_REVIEW: TypedDocumentNode<
  { submitReview: { id: string; review: { label: CellLabel } | null } },
  { input: { predictionId: string; label: CellLabel; note?: string } }
> = gql`
  mutation ConsoleSubmitReview($input: SubmitReviewInput!) {
    submitReview(input: $input) {
      id
      review {
        label
      }
    }
  }
`;

export async function submitReview(
  client: Client,
  predictionId: string,
  label: CellLabel,
  note: string,
): Promise<void> {
  const trimmed = note.trim();
  await run(client, 'mutation', SUBMIT_REVIEW, {
    input: { predictionId, label, ...(trimmed ? { note: trimmed } : {}) },
  });
}

// ------------------------------------------------------------------ models

export type VersionMetrics = Pick<
  Metrics,
  | 'n'
  | 'accuracy'
  | 'balancedAccuracy'
  | 'sensitivity'
  | 'specificity'
  | 'precision'
  | 'f1'
  | 'weightedF1'
  | 'rocAuc'
  | 'prAuc'
  | 'brier'
  | 'ece'
  | 'majorityBaselineAccuracy'
  | 'truePositives'
  | 'falsePositives'
  | 'trueNegatives'
  | 'falseNegatives'
  | 'threshold'
>;

export type ModelSummary = Pick<
  ModelVersion,
  | 'version'
  | 'createdAt'
  | 'architecture'
  | 'inputSize'
  | 'threshold'
  | 'reviewLow'
  | 'reviewHigh'
  | 'isProduction'
  | 'bestEpoch'
  | 'notes'
> & {
  testMetrics: VersionMetrics | null;
  charts: Pick<ModelCharts, 'trainingCurvesUrl' | 'rocUrl' | 'prUrl'>;
  history: Array<{ epoch: number }>;
};

const METRIC_FIELDS = `
  n
  accuracy
  balancedAccuracy
  sensitivity
  specificity
  precision
  f1
  weightedF1
  rocAuc
  prAuc
  brier
  ece
  majorityBaselineAccuracy
  truePositives
  falsePositives
  trueNegatives
  falseNegatives
  threshold
`;

const MODELS: TypedDocumentNode<
  { modelVersions: { edges: Array<{ node: ModelSummary }> }; productionModel: { version: string } | null },
  Record<string, never>
> = gql`
  query ConsoleModels {
    modelVersions(first: ${MODELS_PAGE}) {
      edges {
        node {
          version
          createdAt
          architecture
          inputSize
          threshold
          reviewLow
          reviewHigh
          isProduction
          bestEpoch
          notes
          history {
            epoch
          }
          testMetrics {
            ${METRIC_FIELDS}
          }
          charts {
            trainingCurvesUrl
            rocUrl
            prUrl
          }
        }
      }
    }
    productionModel {
      version
    }
  }
`;

export async function fetchModels(
  client: Client,
): Promise<{ versions: ModelSummary[]; productionVersion: string | null }> {
  const data = await run(client, 'query', MODELS, {});
  return {
    versions: data.modelVersions.edges.map((e) => e.node),
    productionVersion: data.productionModel?.version ?? null,
  };
}

const PROMOTE: TypedDocumentNode<
  { promoteModel: { version: string; isProduction: boolean } },
  { version: string; expectedCurrentVersion: string | null }
> = gql`
  mutation ConsolePromote($version: ID!, $expectedCurrentVersion: ID) {
    promoteModel(version: $version, expectedCurrentVersion: $expectedCurrentVersion) {
      version
      isProduction
    }
  }
`;

/** Compare-and-swap: fails with CONFLICT when production moved since the page was loaded. */
export async function promoteModel(
  client: Client,
  version: string,
  expectedCurrentVersion: string | null,
): Promise<void> {
  await run(client, 'mutation', PROMOTE, { version, expectedCurrentVersion });
}
