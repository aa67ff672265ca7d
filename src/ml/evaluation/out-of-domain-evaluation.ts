import { badInput } from '../../errors';
import {
  domainScore,
  fitDomainModel,
  fitDomainThreshold,
  outOfFoldDomainScores,
} from '../features/out-of-domain';
import { kFoldBySubject, type SplitItem } from '../data/splits';

/** Flagged out of scored, for one kind of image. */
export interface FlagCount {
  flagged: number;
  total: number;
}

export interface DomainEvaluation {
  /** In-domain cells of held-out subjects flagged OUT_OF_DOMAIN: the false alarms a new patient sees. */
  inDomain: FlagCount;
  /** Per kind of shifted or foreign image: how many were flagged. */
  detected: Record<string, FlagCount>;
  /** The threshold each outer fold fitted on its inner out-of-fold scores. */
  thresholds: number[];
}

/**
 * How out-of-domain detection does on subjects it never saw, the way training sets it up: for each
 * outer fold (kFoldBySubject) the domain model is fitted on the training subjects, its threshold on
 * their inner out-of-fold scores at `falseAlarmRate`; then the held-out subjects' cells and the
 * shifted images made from them (`shifted[kind][i]` belongs with `cells[i]`) are scored. Repeated
 * over `seeds` and pooled.
 */
export function evaluateDomainDetection<T extends SplitItem & { features: Float64Array }>(
  cells: T[],
  shifted: Record<string, Float64Array[]>,
  options: { k: number; innerK: number; seeds: number[]; falseAlarmRate: number },
): DomainEvaluation {
  for (const [kind, list] of Object.entries(shifted)) {
    if (list.length !== cells.length)
      throw badInput(
        `Shifted images '${kind}' must hold one per cell (${cells.length}); got ${list.length}.`,
      );
  }
  const index = new Map(cells.map((cell, i) => [cell, i]));
  const inDomain: FlagCount = { flagged: 0, total: 0 };
  const detected: Record<string, FlagCount> = Object.fromEntries(
    Object.keys(shifted).map((kind) => [kind, { flagged: 0, total: 0 }]),
  );
  const thresholds: number[] = [];
  for (const seed of options.seeds) {
    for (const fold of kFoldBySubject(cells, options.k, seed)) {
      const threshold = fitDomainThreshold(
        outOfFoldDomainScores(fold.train, options.innerK, seed + 1),
        options.falseAlarmRate,
      );
      thresholds.push(threshold);
      const model = fitDomainModel(fold.train.map((cell) => cell.features));
      for (const cell of fold.test) {
        const i = index.get(cell)!;
        inDomain.total++;
        if (domainScore(model, cell.features) > threshold) inDomain.flagged++;
        for (const [kind, list] of Object.entries(shifted)) {
          detected[kind].total++;
          if (domainScore(model, list[i]) > threshold) detected[kind].flagged++;
        }
      }
    }
  }
  return { inDomain, detected, thresholds };
}
