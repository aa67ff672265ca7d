import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  crossValidationSummary,
  type CvReport,
  type CrossValidationSummary,
  type Spread,
} from '../../ml/evaluation/cross-validation';
import {
  applyCalibration,
  domainApi,
  fitRecipe,
  pooledScores,
  validateRecipeOptions,
  type DecisionReport,
  type RecipeCell,
} from '../../ml/decisions';
import { servedProbabilities, type MeasuredExample } from '../../ml/evaluation/evaluate';
import { decodeImage } from '../../ml/image/decode';
import { computeMetrics, type BinaryMetrics } from '../../ml/evaluation/metrics';
import { morphologyNorms } from '../../ml/features/morphology';
import { initRuntime } from '../../ml/runtime';
import { splitBySubject } from '../../ml/data/splits';
import type { TrainingConfig } from '../../ml/training/train';
import { buildModelCard } from '../../services/model-card';
import { loadFolder, type FolderImage } from '../folder';
import { Progress } from '../progress';
import { num, configFromFlags, type Flags } from './flags';
import { writeModelDir } from './model-dir';
import { fmt, printMetrics } from './print';

const toExamples = (images: FolderImage[]): MeasuredExample[] =>
  images.map((i) => ({ pixels: i.pixels, label: i.label, morphology: i.morphology }));

/**
 * `lymphoscope train`: a model directory (model.json, weights.bin, card.json) from a C-NMC style folder,
 * made the way every model is made (src/ml/decisions): subject-grouped k-fold cross-validation over the
 * training cells for each seed, calibration, threshold, review band and out-of-domain threshold from the
 * out-of-fold scores, then the served network trained on all training cells. With --test F a
 * subject-grouped share of the cells is held out and only scored by the final model.
 */
export async function trainCommand(flags: Flags): Promise<void> {
  const data = String(flags.data ?? '');
  const out = String(flags.out ?? '');
  if (!data || !out)
    throw new Error(
      'Usage: lymphoscope train --data <dir with all/ and hem/> --out <dir> [--folds 5] [--seeds 3] [--test 0] [--arch ...]',
    );
  const config = configFromFlags(flags);
  const recipe = validateRecipeOptions({ folds: num(flags, 'folds', 5), seeds: num(flags, 'seeds', 3) });
  const testFraction = num(flags, 'test', 0);
  const crossValidation = flags['cv-summary']
    ? await readCvSummary(String(flags['cv-summary']), config)
    : null;
  const runtime = await initRuntime();
  const progress = new Progress();
  const images = await loadFolder(data, config.inputSize, (d, t) =>
    progress.update(d / t, `decoding ${d}/${t}`),
  );
  progress.done();
  const split =
    testFraction > 0
      ? splitBySubject(images, { validationFraction: 0, testFraction, seed: config.seed })
      : { train: images, test: [] as FolderImage[] };
  const domain = domainApi();
  const cells: RecipeCell[] = [];
  const hashes: string[] = [];
  for (const image of split.train) {
    const bytes = await readFile(image.file);
    hashes.push(createHash('sha256').update(bytes).digest('hex'));
    cells.push({
      ...image,
      domainFeatures: domain ? domain.domainFeatures(await decodeImage(bytes)) : null,
    });
  }
  const subjects = new Set(cells.map((c) => c.subjectId ?? c.id)).size;
  process.stdout.write(
    `${images.length} images; ${cells.length} training cells of ${subjects} subjects in ${recipe.folds} ` +
      `subject-grouped folds x ${recipe.seeds} seeds, test ${split.test.length} (backend ${runtime.backend}` +
      `${domain ? '' : '; no out-of-domain detector in this build'})\n`,
  );
  const finished: Array<Record<string, unknown>> = [];
  const fitted = await fitRecipe(cells, config, recipe, {
    domain,
    onFoldProgress: (task, index, total, p) =>
      progress.update(
        (index + ((p.epoch - 1) * p.batchesPerEpoch + p.batch) / (p.epochs * p.batchesPerEpoch)) / total,
        `seed ${task.seed} fold ${task.fold + 1}/${task.folds} epoch ${p.epoch}/${p.epochs} loss ${p.loss.toFixed(3)}`,
      ),
    onFold: async (o, index, total) => {
      progress.done();
      // Every fold's out-of-fold scores as soon as it ends: the decisions can be refitted from this file.
      finished.push({
        seed: o.seed,
        fold: o.fold,
        bestEpoch: o.bestEpoch,
        testIds: o.testIds,
        testLabels: o.testLabels,
        probabilities: o.probabilities.map((p) => Number(p.toFixed(6))),
        networkProbabilities: o.networkProbabilities.map((p) => Number(p.toFixed(6))),
        domainScores: o.domainScores,
      });
      await mkdir(out, { recursive: true });
      await writeFile(path.join(out, 'out-of-fold.json'), JSON.stringify(finished) + '\n');
      process.stdout.write(
        `fold ${index + 1}/${total} (seed ${o.seed}, fold ${o.fold + 1}): best epoch ${o.bestEpoch}/${o.epochs}, ` +
          `${o.trainSeconds.toFixed(0)}s\n`,
      );
    },
    onFinalProgress: (p) =>
      progress.update(
        p.epoch / p.epochs,
        `final model epoch ${p.epoch}/${p.epochs} loss ${p.loss.toFixed(3)}`,
      ),
  });
  progress.done();
  const { model, decisions } = fitted;
  printDecisions(decisions);
  const rule = { ...config, fusion: fitted.fusion, calibration: decisions.calibration };
  const oof = pooledScores(fitted.folds)[0];
  const oofCalibrated = oof.probabilities.map((p) => applyCalibration(decisions.calibration, p));
  const validationMetrics = computeMetrics(oof.labels, oofCalibrated, decisions.threshold);
  let testMetrics: BinaryMetrics | null = null;
  let curveLabels = oof.labels as number[];
  let curveScores = oofCalibrated;
  if (split.test.length > 0) {
    curveLabels = split.test.map((i) => i.label);
    curveScores = await servedProbabilities(model, rule, toExamples(split.test));
    testMetrics = computeMetrics(curveLabels, curveScores, decisions.threshold);
    printMetrics('test (final model)', testMetrics);
  }
  const card = buildModelCard({
    config: { ...config, validationFraction: 0, testFraction },
    trainedOnBackend: runtime.backend,
    training: fitted.final,
    recipe: fitted,
    crossValidation,
    trainingImageSha256: hashes,
    testMetrics,
    validationMetrics,
    lineage: { jobId: null, datasetId: null, snapshotId: null, parentVersion: null, testSplitId: null },
    curve: { labels: curveLabels, probabilities: curveScores },
    morphologyNorms: morphologyNorms(cells.map((i) => ({ m: i.morphology, label: i.label }))),
    notes:
      `Trained by \`lymphoscope train --data ${path.relative(process.cwd(), data) || data}\` on ${cells.length} of ` +
      `${images.length} images (${subjects} subjects). Decisions from out-of-fold scores of ${recipe.folds}-fold ` +
      `subject-grouped cross-validation x ${recipe.seeds} seeds; the served network is trained on all ` +
      `${cells.length} training cells for ${fitted.finalEpochs} epochs (median best epoch of the folds). ` +
      `validationMetrics and the curves are ${split.test.length > 0 ? 'out-of-fold (first seed) and the test split respectively' : 'out of fold (first seed, calibrated): there is no test split'}.`,
  });
  await writeModelDir(out, model, card);
  model.dispose();
  process.stdout.write(`Model written to ${out}\n`);
}

/** The decisions and what they cost, one line each, on stdout. */
function printDecisions(d: DecisionReport): void {
  const s = (x: Spread) => `${fmt(x.mean)} ± ${fmt(x.std)}`;
  const g = d.guarantee;
  process.stdout.write(
    `out of fold (${d.cells} cells, ${d.blasts} blasts, seeds ${d.seeds.join(',')}): ROC AUC ${s(d.outOfFold.rocAuc)}, ` +
      `ECE ${fmt(d.ece.before)} -> ${fmt(d.ece.after)} (${d.calibration ? 'Platt' : 'not calibrated'})\n` +
      `threshold ${fmt(d.threshold)}, review band [${fmt(d.reviewLow)}, ${fmt(d.reviewHigh)}): blasts ALL or review ` +
      `${s(d.outOfFold.allOrReviewSensitivity)}, flagged ${s(d.outOfFold.flaggedShare)}, review rate ${s(d.outOfFold.reviewRate)} ` +
      `(out of domain ${s(d.outOfFold.outOfDomainRate)})\n` +
      `bound: ${g.blastsBelowEdge}/${g.blasts} blasts below the band (${g.caughtOutOfDomain} caught out of domain); at ${g.confidence} confidence at most ` +
      `${fmt(g.achievedBound)} of blasts fall below it (asked ${g.alpha}${g.attained ? ', attained' : `, needs ${g.blastsNeeded} blasts`})\n`,
  );
}

/** Settings that make two configs the same recipe; the seed and the split fractions may differ. */
const RECIPE_KEYS = [
  'architecture',
  'inputSize',
  'epochs',
  'batchSize',
  'learningRate',
  'patience',
  'classBalance',
  'augment',
  'colourJitter',
  'recomputeBatchNorm',
  'testTimeAugmentation',
  'fusion',
] as const;

/**
 * Reads what `lymphoscope cv` printed (its last line is the JSON summary) for the model card. A summary
 * of another recipe is refused: a card must not claim figures its own recipe did not earn.
 */
export async function readCvSummary(file: string, config: TrainingConfig): Promise<CrossValidationSummary> {
  const lines = (await readFile(file, 'utf8')).trim().split('\n');
  let cv: {
    data: string;
    n: number;
    subjects: number;
    folds: number;
    repeats: number;
    config: TrainingConfig;
    summary: CvReport['summary'];
    pooledRocAuc: CvReport['pooledRocAuc'];
    recipeScorer: CvReport['recipeScorer'];
  };
  try {
    cv = JSON.parse(lines[lines.length - 1]);
  } catch {
    throw new Error(`${file} does not end with the JSON summary line of \`lymphoscope cv\`.`);
  }
  if (!cv?.summary || !cv.config || !cv.recipeScorer)
    throw new Error(`${file} does not end with the JSON summary line of \`lymphoscope cv\`.`);
  const differing = RECIPE_KEYS.filter((k) => cv.config[k] !== config[k]);
  if (differing.length > 0) {
    throw new Error(
      `${file} cross-validated another recipe (${differing.join(', ')} differ); rerun cv with these flags.`,
    );
  }
  return crossValidationSummary(
    {
      summary: cv.summary,
      pooledRocAuc: cv.pooledRocAuc,
      recipeScorer: cv.recipeScorer,
      folds: [],
      shifted: {},
    },
    { data: cv.data, n: cv.n, subjects: cv.subjects, folds: cv.folds, repeats: cv.repeats },
  );
}
