import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { installDemoModel, type LocalStack } from '../../src/local/stack';
import type { ModelCard } from '../../src/services/models';
import { graphqlClient, ok } from './graphql';
import { sampleImages, SAMPLE_DIR } from './sample';

const run = promisify(execFile);
const BIN = path.join(__dirname, '..', '..', 'bin', 'lymphoscope.js');

/**
 * Trains a small real model on the C-NMC sample with the CLI into `out`: two folds of one seed for the
 * out-of-fold decisions (the fewest the recipe allows, to keep it quick), and a subject-grouped test split
 * so the card has test metrics and the console a confusion matrix to show.
 */
async function trainWithCli(out: string, flags: string[]): Promise<void> {
  const quick = ['--folds', '2', '--seeds', '1', '--test', '0.2'];
  await run(process.execPath, [BIN, 'train', '--data', SAMPLE_DIR, '--out', out, ...quick, ...flags], {
    maxBuffer: 16 * 1024 * 1024,
    env: { ...process.env, CI: 'true' },
  });
}

export interface ReviewData {
  /** Production: every one of its predictions needs a review. */
  productionVersion: string;
  /** Registered after it, not promoted. */
  candidateVersion: string;
  /** Oldest first, as the review queue lists them. */
  predictionIds: string[];
}

/**
 * What the review console needs to show something real: two model versions trained on the sample
 * (so their charts, metrics and confusion matrices are real), the first promoted with its review band
 * widened to [0, 1) so that every prediction waits for a human, and `cells` predictions of sample cells.
 */
export async function seedReviewData(
  stack: LocalStack,
  adminKey: string,
  workDir: string,
  cells = 3,
): Promise<ReviewData> {
  const productionDir = path.join(workDir, 'model-production');
  const candidateDir = path.join(workDir, 'model-candidate');
  await trainWithCli(productionDir, ['--arch', 'vanilla', '--input-size', '32', '--epochs', '4']);
  await trainWithCli(candidateDir, [
    '--arch',
    'vanilla',
    '--input-size',
    '40',
    '--epochs',
    '6',
    '--seed',
    '7',
  ]);

  const cardFile = path.join(productionDir, 'card.json');
  const card = JSON.parse(await readFile(cardFile, 'utf8')) as ModelCard;
  await writeFile(cardFile, JSON.stringify({ ...card, reviewLow: 0, reviewHigh: 1 }));
  const production = await installDemoModel(stack.services, productionDir);
  if (!production) throw new Error(`No model was installed from ${productionDir}`);

  const [modelJson, weights, candidateJson] = await Promise.all([
    readFile(path.join(candidateDir, 'model.json'), 'utf8'),
    readFile(path.join(candidateDir, 'weights.bin')),
    readFile(path.join(candidateDir, 'card.json'), 'utf8'),
  ]);
  const { version: _v, createdAt: _c, ...candidateCard } = JSON.parse(candidateJson) as ModelCard;
  const candidate = await stack.services.models.register(
    { modelJson: JSON.parse(modelJson), weights },
    candidateCard,
  );

  const gql = graphqlClient(stack.url, adminKey);
  const images = sampleImages();
  const picks = [images[0], images[images.length - 1], images[1], images[images.length - 2]].slice(0, cells);
  const predictionIds: string[] = [];
  for (const image of picks) {
    const { predict } = ok(
      await gql<{ predict: { id: string; needsReview: boolean } }>(
        'mutation($input: PredictInput!) { predict(input: $input) { id needsReview } }',
        { input: { imageBase64: image.bytes.toString('base64') } },
      ),
    );
    if (!predict.needsReview) throw new Error(`Prediction ${predict.id} does not need a review`);
    predictionIds.push(predict.id);
  }
  return { productionVersion: production.version, candidateVersion: candidate.version, predictionIds };
}
