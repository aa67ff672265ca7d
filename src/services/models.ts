import { CHART_NAMES, type ChartName } from '../charts/chart-names';
import { conflict, LymphoscopeError, notFound } from '../errors';
import type { Architecture } from '../ml/models/architecture-names';
import type { CrossValidationSummary } from '../ml/evaluation/cross-validation';
import type { DecisionReport, DomainModel, OutOfDomainReport, PlattCalibration } from '../ml/decisions';
import type { MorphologyStack } from '../ml/features/fusion';
import type { BinaryMetrics } from '../ml/evaluation/metrics';
import type { ModelBundle } from '../ml/models/model-bundle';
import { OnnxClassifier, onnxRuntime, onnxRuntimeError } from '../ml/onnx/session';
import { lazyNetwork, type TfjsNetwork } from '../ml/serving/tfjs-network';
import type { MorphologyNorms } from '../ml/features/morphology';
import { PREPROCESSING } from '../ml/preprocessing';
import type { EpochRecord, TrainingConfig } from '../ml/training/train';
import type { JsonDocuments } from '../storage/json-documents';
import { layout } from '../storage/layout';
import type { ObjectStore } from '../storage/object-store';
import type { Logger } from '../observability/log';
import type { AuditLog } from './audit';
import type { Caller } from './auth';
import type { ModelArtifacts } from './model-artifacts';
import { pageOf, type Page } from './pagination';

/** Everything known about a model version; card.json, written last, makes the version visible. */
export interface ModelCard {
  version: string;
  createdAt: string;
  architecture: Architecture;
  inputSize: number;
  trainedOnBackend: string;
  /** What computed the training steps (absent on cards written before it was recorded). */
  trainingRuntime?: 'onnxruntime' | 'tfjs';
  /** Why training ran on TF.js (about 5.6x slower) though onnxruntime was asked for; absent when it did not. */
  trainingFallback?: string;
  config: (TrainingConfig & { validationFraction: number; testFraction: number }) | null;
  /** Serve the mean probability over the cell's 8 flips and quarter turns (absent on older cards: off). */
  testTimeAugmentation?: boolean;
  /** The morphology stack serving applies to the network's output (absent or null: the network alone). */
  fusion?: MorphologyStack | null;
  /** The recipe's subject-grouped cross-validation on the training data, when it was run (the demo model's). */
  crossValidation?: CrossValidationSummary | null;
  threshold: number;
  reviewLow: number;
  reviewHigh: number;
  /**
   * Platt scaling applied to the (fused) probability before threshold and band; fitted on out-of-fold
   * scores. Absent or null: probabilities are served uncalibrated (cards before issue 11).
   */
  calibration?: PlattCalibration | null;
  /**
   * How threshold, band and calibration were fitted on out-of-fold scores, with the band's bound and what
   * it costs (src/ml/decisions/rule.ts). Absent on cards whose decisions came from one validation split.
   */
  decisions?: DecisionReport | null;
  /** The out-of-domain model and its threshold (fitted out of fold); null or absent: no detector. */
  outOfDomain?: (DomainModel & { threshold: number }) | null;
  /** How the out-of-domain threshold was chosen and its false-alarm rate on held-out subjects. */
  outOfDomainReport?: OutOfDomainReport | null;
  /** sha256 (hex) of every image the model's networks were trained on, sorted; absent on older cards. */
  trainingImageSha256?: string[];
  testMetrics: BinaryMetrics | null;
  validationMetrics: BinaryMetrics | null;
  history: EpochRecord[];
  bestEpoch: number | null;
  lineage: {
    jobId: string | null;
    datasetId: string | null;
    snapshotId: string | null;
    parentVersion: string | null;
    /** A digest of the test split's image ids: equal digests mean comparable test metrics. */
    testSplitId: string | null;
  };
  rocCurve: Array<{ x: number; y: number; threshold: number | null }>;
  /** Test-split precision-recall curve (x: recall, y: precision). Cards written before it was kept lack it. */
  prCurve?: Array<{ x: number; y: number; threshold: number | null }>;
  /** The pictures stored under models/<version>/charts/ (absent on cards written before charts existed). */
  charts?: ChartName[];
  morphologyNorms: MorphologyNorms | null;
  /** How a client must prepare pixels to reproduce the API's answers with the TF.js artifacts. */
  preprocessing: string;
  notes: string | null;
}

export type NewModelCard = Omit<ModelCard, 'version' | 'createdAt' | 'charts'>;

interface Alias {
  version: string;
  promotedAt: string;
  promotedBy: string;
  /** The audit record of the promote that wrote this alias (absent on aliases older than that). */
  auditId?: string;
}

/** The test metrics compareModels sets side by side, in the order the API lists them. */
const COMPARED: Array<keyof BinaryMetrics> = [
  'accuracy',
  'balancedAccuracy',
  'sensitivity',
  'specificity',
  'precision',
  'f1',
  'weightedF1',
  'rocAuc',
  'prAuc',
  'brier',
  'ece',
];

export interface MetricDelta {
  metric: keyof BinaryMetrics;
  a: number | null;
  b: number | null;
  /** b - a; null unless both were tested on the same split and both figures are finite. */
  delta: number | null;
}

export interface ModelComparison {
  a: ModelCard;
  b: ModelCard;
  /** True when both were tested on the same split, so the deltas mean something. */
  sameTestSplit: boolean;
  deltas: MetricDelta[];
}

const VERSION = /^v(\d{4,})$/;
const formatVersion = (n: number) => `v${String(n).padStart(4, '0')}`;

export interface LoadedModel {
  card: ModelCard;
  /**
   * The network in TF.js. Built at load unless onnxruntime runs all of it (its predictions and Grad-CAM),
   * and then only if something asks for it: the API's cold start does not load TF.js for such a version.
   */
  network: TfjsNetwork;
  /** The same network in onnxruntime, which serving prefers; null without model.onnx or onnxruntime. */
  onnx: OnnxClassifier | null;
}

/**
 * Versions under models/<version>/ and the production alias with compare-and-swap. A warm process keeps
 * loaded models keyed by version: versions are immutable, so the cache never goes stale, and the alias
 * is re-read per request so a promote takes effect at once.
 */
export class ModelRegistry {
  private readonly loaded = new Map<string, Promise<LoadedModel>>();
  private onnxUnavailableLogged = false;

  constructor(
    private readonly store: ObjectStore,
    private readonly docs: JsonDocuments,
    private readonly audit: AuditLog,
    private readonly log: Logger,
    /** Given where models are registered (src/services/model-artifacts.ts); the API has none. */
    private readonly artifacts: ModelArtifacts | null = null,
    private readonly maxLoaded = 4,
  ) {}

  /**
   * Claims the next free version with a create-once claim, writes the artifacts, then the card. A crash
   * before the card leaves an invisible, claimed version number; nothing half-written is ever served.
   */
  async register(bundle: ModelBundle, card: NewModelCard): Promise<ModelCard> {
    if (!this.artifacts) {
      throw new Error('This process does not register models: createServices was not given `registration`.');
    }
    const charts = await this.renderCharts(this.artifacts, card);
    const onnx = await this.exportOnnx(this.artifacts, bundle, card);
    for (let attempt = 0; attempt < 20; attempt++) {
      const version = formatVersion((await this.highestVersionNumber()) + 1 + attempt);
      try {
        await this.docs.create(layout.modelFile(version, 'claim.json'), { at: new Date().toISOString() });
      } catch (error) {
        if (error instanceof LymphoscopeError && error.code === 'CONFLICT') continue;
        throw error;
      }
      await this.store.put(layout.modelFile(version, 'weights.bin'), bundle.weights, {
        contentType: 'application/octet-stream',
      });
      await this.store.put(layout.modelFile(version, 'model.json'), JSON.stringify(bundle.modelJson), {
        contentType: 'application/json',
      });
      if (onnx) {
        await this.store.put(layout.modelFile(version, 'model.onnx'), onnx, {
          contentType: 'application/octet-stream',
        });
      }
      for (const [name, svg] of charts) {
        await this.store.put(layout.modelChart(version, name), svg, { contentType: 'image/svg+xml' });
      }
      const full: ModelCard = {
        ...card,
        charts: [...charts.keys()],
        version,
        createdAt: new Date().toISOString(),
      };
      await this.docs.create(layout.modelFile(version, 'card.json'), full);
      this.log.info('model registered', {
        version,
        architecture: card.architecture,
        jobId: card.lineage.jobId,
      });
      return full;
    }
    throw conflict('Could not claim a model version number; retry.');
  }

  /** Pictures are a convenience: a chart that fails to render is logged and left out, never worth losing a model for. */
  private async renderCharts(artifacts: ModelArtifacts, card: NewModelCard): Promise<Map<ChartName, string>> {
    try {
      return await artifacts.renderCharts(card);
    } catch (error) {
      this.log.warn('model charts could not be rendered', { error, jobId: card.lineage.jobId });
      return new Map();
    }
  }

  /**
   * The ONNX twin served by onnxruntime (faster than TF.js wasm: `npm run bench` measures by how much). Like the
   * charts it is an optimisation: a model the exporter cannot translate is logged and served by TF.js.
   */
  private async exportOnnx(
    artifacts: ModelArtifacts,
    bundle: ModelBundle,
    card: NewModelCard,
  ): Promise<Uint8Array | null> {
    try {
      const exported = await artifacts.exportOnnx(bundle);
      if (!exported.gradCam) {
        this.log.info('ONNX export has no Grad-CAM; heat maps stay on TF.js', {
          reason: exported.gradCamSkipped,
          jobId: card.lineage.jobId,
        });
      }
      return exported.bytes;
    } catch (error) {
      this.log.warn('model could not be exported to ONNX; it will be served by TF.js', {
        error,
        jobId: card.lineage.jobId,
      });
      return null;
    }
  }

  private async highestVersionNumber(): Promise<number> {
    const objects = await this.store.listAll(layout.modelsPrefix(), { limit: 1_000_000 });
    let max = 0;
    for (const o of objects) {
      const m = VERSION.exec(o.key.split('/')[1] ?? '');
      if (m) max = Math.max(max, Number(m[1]));
    }
    return max;
  }

  async get(version: string): Promise<ModelCard | null> {
    if (!VERSION.test(version)) return null;
    return (await this.docs.get<ModelCard>(layout.modelFile(version, 'card.json')))?.value ?? null;
  }

  async require(version: string): Promise<ModelCard> {
    const card = await this.get(version);
    if (!card) throw notFound('Model version', version);
    return card;
  }
  /** Two versions' test metrics side by side; deltas only when both were tested on the same split. */
  async compare(a: string, b: string): Promise<ModelComparison> {
    const [cardA, cardB] = await Promise.all([this.require(a), this.require(b)]);
    const sameTestSplit =
      cardA.lineage.testSplitId !== null && cardA.lineage.testSplitId === cardB.lineage.testSplitId;
    // NaN (e.g. AUC on a one-class split) is no figure to compare: it becomes null.
    const finite = (v: number | undefined) => (v == null || !Number.isFinite(v) ? null : v);
    return {
      a: cardA,
      b: cardB,
      sameTestSplit,
      deltas: COMPARED.map((metric) => {
        const va = finite(cardA.testMetrics?.[metric] as number | undefined);
        const vb = finite(cardB.testMetrics?.[metric] as number | undefined);
        return { metric, a: va, b: vb, delta: sameTestSplit && va !== null && vb !== null ? vb - va : null };
      }),
    };
  }

  /** Newest first. */
  async list(first: number, after?: string): Promise<Page<ModelCard>> {
    const objects = await this.store.listAll(layout.modelsPrefix(), { limit: 1_000_000 });
    const versions = objects
      .filter((o) => o.key.endsWith('/card.json') && VERSION.test(o.key.split('/')[1]))
      .map((o) => o.key.split('/')[1])
      .sort()
      .reverse();
    const page = pageOf(versions, (v) => v, first, after);
    const cards = await Promise.all(page.items.map((i) => this.require(i.node)));
    return { ...page, items: page.items.map((i, n) => ({ cursor: i.cursor, node: cards[n] })) };
  }

  async productionVersion(): Promise<string | null> {
    return (await this.docs.get<Alias>(layout.productionAlias()))?.value.version ?? null;
  }

  /** Compare-and-swap on the alias: a stale expectation, or a lost race, is a CONFLICT. */
  async promote(caller: Caller, version: string, expectedCurrentVersion?: string | null): Promise<ModelCard> {
    const card = await this.require(version);
    const current = await this.docs.get<Alias>(layout.productionAlias());
    const currentVersion = current?.value.version ?? null;
    if (
      expectedCurrentVersion !== undefined &&
      expectedCurrentVersion !== null &&
      expectedCurrentVersion !== currentVersion
    ) {
      throw conflict(
        `The production model is ${currentVersion ?? 'unset'}, not ${expectedCurrentVersion}; reload and decide again.`,
        { currentVersion },
      );
    }
    // Audited with the change: the record first, the alias (naming it) second, the outcome last. A
    // lost answer to the alias write is recognised as this promote's own (ObjectStore.put), not a
    // conflict, so a promote that took effect is never reported failed nor left unaudited.
    const entry = {
      action: 'model.promote',
      target: version,
      before: { version: currentVersion },
      after: { version },
    };
    await this.audit.audited(caller, entry, async (auditId) => {
      const alias: Alias = {
        version,
        promotedAt: new Date().toISOString(),
        promotedBy: caller.keyId,
        auditId,
      };
      try {
        if (current) await this.docs.replace(layout.productionAlias(), alias, current.etag);
        else await this.docs.create(layout.productionAlias(), alias);
      } catch (error) {
        if (error instanceof LymphoscopeError && error.code === 'CONFLICT') {
          throw conflict(
            'Another promote changed the production model at the same time; reload and decide again.',
          );
        }
        throw error;
      }
    });
    this.log.info('model promoted', { version, previous: currentVersion, actor: caller.keyId });
    return card;
  }

  async readBundle(version: string): Promise<ModelBundle> {
    const [json, weights] = await Promise.all([
      this.store.get(layout.modelFile(version, 'model.json')),
      this.store.get(layout.modelFile(version, 'weights.bin')),
    ]);
    if (!json || !weights) throw notFound('Model artifacts of version', version);
    return { modelJson: JSON.parse(json.body.toString('utf8')), weights: weights.body };
  }

  /** The model for serving, loaded once per process and version. */
  async load(version: string): Promise<LoadedModel> {
    let entry = this.loaded.get(version);
    if (!entry) {
      entry = (async () => {
        // The card, the TF.js artifacts and the ONNX twin are read at once: on a cold start one S3 round
        // trip instead of three. The card is awaited first, so a missing version is still NOT_FOUND of the
        // version; the others' failures are theirs to report once it exists.
        const onnxBytes = onnxRuntime()
          ? this.store.get(layout.modelFile(version, 'model.onnx'))
          : Promise.resolve(null);
        const bundle = this.readBundle(version);
        onnxBytes.catch(() => undefined);
        bundle.catch(() => undefined);
        const card = await this.require(version);
        const onnx = await this.loadOnnx(card, onnxBytes);
        try {
          // A damaged weights.bin fails here even where onnxruntime serves the version.
          const network = lazyNetwork(await bundle);
          if (!onnx?.explains) await network.model();
          return { card, network, onnx };
        } catch (error) {
          await onnx?.dispose();
          throw error;
        }
      })();
      this.loaded.set(version, entry);
      entry.catch(() => this.loaded.delete(version));
      this.evict();
    }
    return entry;
  }

  private evict(): void {
    while (this.loaded.size > this.maxLoaded) {
      const [oldest, entry] = this.loaded.entries().next().value as [string, Promise<LoadedModel>];
      this.loaded.delete(oldest);
      entry
        .then(async (l) => {
          l.network.dispose();
          await l.onnx?.dispose();
        })
        .catch(() => undefined);
    }
  }

  /** Never throws: without an ONNX session the version is served by TF.js. */
  private async loadOnnx(
    card: ModelCard,
    bytes: Promise<{ body: Buffer } | null>,
  ): Promise<OnnxClassifier | null> {
    if (!onnxRuntime()) {
      if (!this.onnxUnavailableLogged) {
        this.log.warn('onnxruntime-node is unavailable; serving with TF.js', { reason: onnxRuntimeError() });
        this.onnxUnavailableLogged = true;
      }
      return null;
    }
    try {
      const stored = await bytes;
      return stored ? await OnnxClassifier.create(stored.body, card.inputSize) : null;
    } catch (error) {
      this.log.warn('the ONNX model could not be loaded; serving with TF.js', {
        error,
        version: card.version,
      });
      return null;
    }
  }

  /** Presigned GETs of the version's SVG charts, null for a chart it does not have. */
  async chartUrls(card: ModelCard, ttlSeconds: number): Promise<Record<ChartName, string | null>> {
    const stored = new Set(card.charts ?? []);
    const urls = await Promise.all(
      CHART_NAMES.map((name) =>
        stored.has(name)
          ? this.store.presignGet(layout.modelChart(card.version, name), { expiresInSeconds: ttlSeconds })
          : null,
      ),
    );
    return Object.fromEntries(CHART_NAMES.map((name, i) => [name, urls[i]])) as Record<
      ChartName,
      string | null
    >;
  }

  async artifactUrls(version: string, ttlSeconds: number) {
    await this.require(version);
    const [modelJsonUrl, weightsUrl] = await Promise.all([
      this.store.presignGet(layout.modelFile(version, 'model.json'), { expiresInSeconds: ttlSeconds }),
      this.store.presignGet(layout.modelFile(version, 'weights.bin'), { expiresInSeconds: ttlSeconds }),
    ]);
    return {
      modelJsonUrl,
      weightsUrl,
      preprocessing: PREPROCESSING,
      expiresAt: new Date(Date.now() + ttlSeconds * 1000).toISOString(),
    };
  }
}
