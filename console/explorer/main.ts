/**
 * An offline GraphQL explorer: GraphiQL from npm, bundled by console/build.ts with React, its editors and
 * its fonts, so it loads nothing from the internet (Apollo Sandbox, at GET /graphql, loads from Apollo's
 * CDN and reports telemetry; hospital networks often block both). Served by the local stack at
 * /explorer/ and shipped in the static console build as explorer/.
 */
import { createGraphiQLFetcher, type FetcherParams } from '@graphiql/toolkit';
import { GraphiQL } from 'graphiql';
import 'graphiql/graphiql.css';
import { Kind, parse, type OperationDefinitionNode } from 'graphql';
import { createElement } from 'react';
import { createRoot } from 'react-dom/client';

declare global {
  // Set by ../config.js, shared with the review console.
  var LYMPHOSCOPE_CONSOLE: { apiUrl?: string } | undefined;
}

const DEFAULT_QUERY = `# The Lymphoscope API, offline. health needs no key; for everything else put your API key in
# Headers below: {"x-api-key": "lsk_..."} (npm start prints the admin key on the first start).
# Every operation, with copy-paste examples: docs/API.md. Ctrl-Enter runs the query.
query Health {
  health {
    status
    version
    mlBackend
    storageReachable
    productionModelVersion
  }
}
`;

/**
 * GraphiQL 3 keeps the last operation name it parsed when the query becomes anonymous, so after the
 * default `query Health` a plain `{ me { name } }` would be sent as operation "Health" and refused
 * (OPERATION_RESOLUTION_FAILURE). A name that names no operation of the document is dropped when the
 * document holds one operation, which is then unambiguous.
 */
export function withValidOperationName(params: FetcherParams): FetcherParams {
  if (!params.operationName) return params;
  let operations: string[];
  try {
    operations = parse(params.query)
      .definitions.filter((d) => d.kind === Kind.OPERATION_DEFINITION)
      .map((d) => (d as OperationDefinitionNode).name?.value ?? '');
  } catch {
    return params; // the server says what is wrong with it
  }
  if (operations.includes(params.operationName) || operations.length !== 1) return params;
  return { ...params, operationName: null };
}

/** The API: config.js's apiUrl, resolved against the console's folder (one level up from this page). */
export function explorerApiUrl(location: Location, configured: string | undefined): string {
  return new URL(configured ?? '/graphql', new URL('../', location.href)).toString();
}

const root = document.getElementById('explorer');
if (root) {
  const url = explorerApiUrl(window.location, globalThis.LYMPHOSCOPE_CONSOLE?.apiUrl);
  const fetcher = createGraphiQLFetcher({ url });
  createRoot(root).render(
    createElement(GraphiQL, {
      fetcher: (params, options) => fetcher(withValidOperationName(params), options),
      defaultQuery: DEFAULT_QUERY,
      defaultHeaders: '{}',
      // The key stays in this tab's memory unless the user ticks "persist headers".
      shouldPersistHeaders: false,
      defaultEditorToolsVisibility: 'headers',
    }),
  );
}
