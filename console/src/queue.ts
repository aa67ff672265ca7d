import type { Client } from '@urql/core';
import { ApiError, fetchReviewQueue, submitReview, type QueueCell } from './api';
import type { ReviewReason } from '../../src/generated/graphql';
import { fixed, h, replaceChildren } from './dom';
import { heatmapLegend } from './heatmap-legend';

const FEATURE_NAMES: Record<string, string> = {
  areaPx: 'Area (px²)',
  perimeterPx: 'Perimeter (px)',
  circularity: 'Circularity',
  solidity: 'Solidity',
  eccentricity: 'Eccentricity',
  equivalentDiameterPx: 'Diameter (px)',
  meanIntensity: 'Mean intensity',
  intensityStd: 'Intensity SD',
  glcmContrast: 'Chromatin contrast (GLCM)',
  glcmHomogeneity: 'Chromatin homogeneity (GLCM)',
  glcmEnergy: 'Chromatin uniformity (GLCM energy)',
  glcmEntropy: 'Chromatin entropy (GLCM)',
  glcmCorrelation: 'Chromatin correlation (GLCM)',
  lbpUniform: 'Edges and spots (LBP uniform share)',
  lbpFlat: 'Flat chromatin (LBP flat share)',
  lumaSpread: 'Intensity spread (P90 - P10)',
  darkShare: 'Dark clumps (share)',
  nucleusShare: 'Nucleus share (Otsu)',
};

/** Why the cell is in the queue, as a reviewer reads it (a Record: a new reason is a compile error here). */
const REASONS: Record<ReviewReason, { text: string; title: string }> = {
  UNCERTAIN: {
    text: 'Uncertain',
    title: "P(ALL) is inside the model's review band: too close to call.",
  },
  OUT_OF_DOMAIN: {
    text: 'Out of domain',
    title:
      'The image is unlike the training data (stain, magnification, not a single cell): P(ALL) means little.',
  },
};

/** Large numbers (areas) read better without decimals; ratios need three. */
const figure = (v: number | null | undefined) =>
  v !== null && v !== undefined && Math.abs(v) >= 100 ? fixed(v, 0) : fixed(v);

/**
 * One cell at a time, oldest first: the image large with the heat map a key away, the model's call and
 * the morphology against the class norms beside it. A verdict is one key (A or N); the note field takes
 * typing without triggering shortcuts. Returns a function that detaches the keyboard handler.
 */
export function renderQueue(root: HTMLElement, client: Client, onUnauthenticated: () => void): () => void {
  let cells: QueueCell[] = [];
  let hasMore = false;
  let index = 0;
  let reviewed = 0;
  let showHeatmap = false;
  let busy = false;

  const status = h('p', { class: 'status', role: 'status', id: 'queue-status' }, 'Loading the review queue…');
  const body = h('div', { class: 'queue' });
  root.replaceChildren(h('section', { class: 'page' }, h('h1', {}, 'Review queue'), status, body));

  const fail = (error: unknown) => {
    if (error instanceof ApiError && error.code === 'UNAUTHENTICATED') return onUnauthenticated();
    status.textContent = error instanceof Error ? error.message : String(error);
    status.classList.add('error');
    busy = false;
  };

  const load = async () => {
    const page = await fetchReviewQueue(client);
    cells = page.cells;
    hasMore = page.hasMore;
    index = 0;
    draw();
  };

  const current = () => cells[index] ?? null;

  const decide = async (label: 'ALL' | 'NORMAL') => {
    const cell = current();
    if (!cell || busy) return;
    busy = true;
    const note = (document.getElementById('review-note') as HTMLTextAreaElement | null)?.value ?? '';
    status.classList.remove('error');
    status.textContent = `Saving ${label === 'ALL' ? 'ALL' : 'Normal'} for ${cell.id}…`;
    await submitReview(client, cell.id, label, note);
    reviewed++;
    index++;
    busy = false;
    if (index >= cells.length) await load();
    else draw();
  };

  const toggleHeatmap = () => {
    showHeatmap = !showHeatmap;
    const overlay = document.getElementById('heatmap');
    overlay?.classList.toggle('visible', showHeatmap);
    document.getElementById('heatmap-legend')?.classList.toggle('visible', showHeatmap);
    document.getElementById('toggle-heatmap')?.setAttribute('aria-pressed', String(showHeatmap));
  };

  function draw() {
    const cell = current();
    if (!cell) {
      status.textContent = reviewed
        ? `Queue empty: ${reviewed} cell${reviewed === 1 ? '' : 's'} reviewed in this session.`
        : 'No cell is waiting for review.';
      replaceChildren(body);
      return;
    }
    const waiting = hasMore ? `${cells.length - index}+` : String(cells.length - index);
    status.textContent = `${waiting} waiting · ${reviewed} reviewed in this session`;
    replaceChildren(body, viewer(cell), details(cell));
  }

  function viewer(cell: QueueCell): HTMLElement {
    return h(
      'figure',
      { class: 'cell' },
      h(
        'div',
        { class: 'cell-image' },
        cell.imageUrl
          ? h('img', { id: 'cell-image', src: cell.imageUrl, alt: `Cell of prediction ${cell.id}` })
          : h('p', { class: 'muted' }, 'The image of this prediction was not kept.'),
        cell.heatmapUrl
          ? h('img', {
              id: 'heatmap',
              class: showHeatmap ? 'overlay visible' : 'overlay',
              src: cell.heatmapUrl,
              alt: 'Grad-CAM heat map over the cell',
            })
          : null,
      ),
      h(
        'figcaption',
        {},
        h(
          'button',
          {
            id: 'toggle-heatmap',
            type: 'button',
            'aria-pressed': String(showHeatmap),
            disabled: !cell.heatmapUrl,
            onclick: toggleHeatmap,
          },
          'Heat map ',
          h('kbd', {}, 'H'),
        ),
        h('span', { class: 'muted' }, ` Prediction ${cell.id} · model ${cell.modelVersion}`),
        cell.heatmapUrl ? heatmapLegend(showHeatmap) : null,
      ),
    );
  }

  function details(cell: QueueCell): HTMLElement {
    const calledAll = cell.label === 'ALL';
    return h(
      'div',
      { class: 'verdict' },
      h(
        'section',
        { class: 'card' },
        h('h2', {}, 'Model'),
        h(
          'p',
          { class: 'call' },
          'Calls it ',
          h(
            'strong',
            { class: calledAll ? 'label-all' : 'label-normal', id: 'model-label' },
            calledAll ? 'ALL' : 'Normal',
          ),
        ),
        reviewReasons(cell),
        probabilityBar(cell.probabilityAll, cell.threshold),
        h(
          'p',
          { class: 'muted' },
          `P(ALL) = ${fixed(cell.probabilityAll)}; ALL at or above ${fixed(cell.threshold)}.`,
        ),
      ),
      h(
        'section',
        { class: 'card' },
        h('h2', {}, 'Morphology against the class norms'),
        morphologyTable(cell),
      ),
      h(
        'section',
        { class: 'card review' },
        h('h2', {}, 'Your verdict'),
        h('label', { for: 'review-note' }, 'Note (optional)'),
        h('textarea', {
          id: 'review-note',
          rows: 2,
          maxlength: 2000,
          placeholder: 'e.g. clefted nucleus, vacuoles',
        }),
        h(
          'div',
          { class: 'buttons' },
          h(
            'button',
            { id: 'review-all', type: 'button', class: 'all', onclick: () => decide('ALL').catch(fail) },
            'ALL ',
            h('kbd', {}, 'A'),
          ),
          h(
            'button',
            {
              id: 'review-normal',
              type: 'button',
              class: 'normal',
              onclick: () => decide('NORMAL').catch(fail),
            },
            'Normal ',
            h('kbd', {}, 'N'),
          ),
        ),
        h('p', { class: 'muted' }, 'Keys work outside the note field; press Esc to leave it.'),
      ),
    );
  }

  const onKey = (event: KeyboardEvent) => {
    const target = event.target as HTMLElement | null;
    if (target && (target.tagName === 'TEXTAREA' || target.tagName === 'INPUT')) {
      if (event.key === 'Escape') target.blur();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const key = event.key.toLowerCase();
    if (key === 'a') decide('ALL').catch(fail);
    else if (key === 'n') decide('NORMAL').catch(fail);
    else if (key === 'h') toggleHeatmap();
    else return;
    event.preventDefault();
  };
  document.addEventListener('keydown', onKey);
  load().catch(fail);
  return () => document.removeEventListener('keydown', onKey);
}

function reviewReasons(cell: QueueCell): HTMLElement {
  const score =
    cell.outOfDomainScore === null || cell.outOfDomainScore === undefined
      ? null
      : ` (out-of-domain score ${fixed(cell.outOfDomainScore, 2)})`;
  return h(
    'p',
    { class: 'reasons', id: 'review-reasons' },
    'Sent to review: ',
    ...cell.reviewReasons.map((reason) =>
      h(
        'span',
        {
          class: `badge reason reason-${reason.toLowerCase()}`,
          'data-reason': reason,
          title: REASONS[reason].title,
        },
        REASONS[reason].text,
      ),
    ),
    score ? h('span', { class: 'muted' }, score) : null,
  );
}

function probabilityBar(probability: number, threshold: number): HTMLElement {
  const pct = (v: number) => `${(Math.min(1, Math.max(0, v)) * 100).toFixed(1)}%`;
  return h(
    'div',
    {
      class: 'probability',
      role: 'meter',
      'aria-label': 'Probability of ALL',
      'aria-valuemin': 0,
      'aria-valuemax': 1,
      'aria-valuenow': probability,
    },
    h('div', { class: 'fill', style: `width: ${pct(probability)}` }),
    h('div', {
      class: 'threshold',
      style: `left: ${pct(threshold)}`,
      title: `threshold ${fixed(threshold)}`,
    }),
  );
}

function morphologyTable(cell: QueueCell): HTMLElement {
  const comparisons = cell.morphology?.comparisons ?? [];
  if (comparisons.length === 0) return h('p', { class: 'muted' }, 'No morphology for this cell.');
  return h(
    'table',
    { class: 'morphology' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', {}, 'Feature'),
        h('th', {}, 'This cell'),
        h('th', {}, 'ALL mean'),
        h('th', {}, 'Normal mean'),
        h('th', {}, 'Closer to'),
      ),
    ),
    h(
      'tbody',
      {},
      ...comparisons.map((c) =>
        h(
          'tr',
          {},
          h('th', { scope: 'row' }, FEATURE_NAMES[c.feature] ?? c.feature),
          h('td', {}, figure(c.value)),
          h('td', { title: `z = ${fixed(c.zAll, 2)}` }, figure(c.allMean)),
          h('td', { title: `z = ${fixed(c.zNormal, 2)}` }, figure(c.normalMean)),
          h(
            'td',
            {},
            c.closerTo
              ? h(
                  'span',
                  { class: c.closerTo === 'ALL' ? 'badge label-all' : 'badge label-normal' },
                  c.closerTo === 'ALL' ? 'ALL' : 'Normal',
                )
              : '–',
          ),
        ),
      ),
    ),
  );
}
