import type { Client } from '@urql/core';
import { ApiError, fetchModels, promoteModel, type ModelSummary, type VersionMetrics } from './api';
import { fixed, h, percent, replaceChildren } from './dom';

type Row = [label: string, value: (m: VersionMetrics) => string, hint?: string];

/** Test-split figures, the majority baseline beside accuracy, sensitivity always with specificity. */
const ROWS: Row[] = [
  ['Test cells', (m) => String(m.n)],
  ['Accuracy', (m) => percent(m.accuracy)],
  [
    'Majority baseline',
    (m) => percent(m.majorityBaselineAccuracy),
    'Accuracy of always answering the commoner class',
  ],
  ['Balanced accuracy', (m) => percent(m.balancedAccuracy)],
  ['Sensitivity (ALL)', (m) => percent(m.sensitivity)],
  ['Specificity', (m) => percent(m.specificity)],
  ['Precision (ALL)', (m) => percent(m.precision)],
  ['F1 (ALL)', (m) => fixed(m.f1)],
  ['Weighted F1', (m) => fixed(m.weightedF1), 'The C-NMC 2019 challenge metric'],
  ['ROC AUC', (m) => fixed(m.rocAuc)],
  ['Average precision', (m) => fixed(m.prAuc)],
  ['Brier score', (m) => fixed(m.brier), 'Lower is better'],
  ['Calibration error (ECE)', (m) => fixed(m.ece), 'Lower is better'],
];

/**
 * Versions side by side, newest first, then the charts and confusion matrix of the one selected
 * (production by default). Admins get a promote button whose confirmation names the version it
 * replaces; the promote is a compare-and-swap on that version.
 */
export function renderModels(
  root: HTMLElement,
  client: Client,
  isAdmin: boolean,
  onUnauthenticated: () => void,
): void {
  const status = h('p', { class: 'status', role: 'status', id: 'models-status' }, 'Loading model versions…');
  const body = h('div', {});
  root.replaceChildren(h('section', { class: 'page' }, h('h1', {}, 'Model versions'), status, body));

  let versions: ModelSummary[] = [];
  let productionVersion: string | null = null;
  let selected: string | null = null;

  const fail = (error: unknown) => {
    if (error instanceof ApiError && error.code === 'UNAUTHENTICATED') return onUnauthenticated();
    status.textContent = error instanceof Error ? error.message : String(error);
    status.classList.add('error');
  };

  const load = async () => {
    ({ versions, productionVersion } = await fetchModels(client));
    if (!versions.some((v) => v.version === selected))
      selected = productionVersion ?? versions[0]?.version ?? null;
    status.classList.remove('error');
    status.textContent = versions.length
      ? `${versions.length} newest version${versions.length === 1 ? '' : 's'}; production: ${productionVersion ?? 'none'}.`
      : 'No model version is registered yet. Train one with startTraining.';
    draw();
  };

  function draw() {
    const version = versions.find((v) => v.version === selected);
    replaceChildren(body, versions.length ? comparison() : null, version ? detail(version) : null);
  }

  function comparison(): HTMLElement {
    return h(
      'div',
      { class: 'card scroll' },
      h(
        'table',
        { class: 'metrics', id: 'metrics-table' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            h('th', {}, 'Test split'),
            ...versions.map((v) =>
              h(
                'th',
                { class: v.version === selected ? 'selected' : null },
                h(
                  'button',
                  {
                    type: 'button',
                    class: 'link',
                    'data-version': v.version,
                    onclick: () => {
                      selected = v.version;
                      draw();
                    },
                  },
                  v.version,
                ),
                v.isProduction ? h('span', { class: 'badge production' }, 'production') : null,
                h('div', { class: 'muted small' }, `${v.architecture.toLowerCase()} ${v.inputSize}px`),
              ),
            ),
          ),
        ),
        h(
          'tbody',
          {},
          ...ROWS.map(([label, value, hint]) =>
            h(
              'tr',
              {},
              h('th', { scope: 'row', title: hint ?? null }, label),
              ...versions.map((v) => h('td', {}, v.testMetrics ? value(v.testMetrics) : '–')),
            ),
          ),
          h(
            'tr',
            {},
            h('th', { scope: 'row' }, 'Threshold · review band'),
            ...versions.map((v) =>
              h('td', {}, `${fixed(v.threshold, 2)} · [${fixed(v.reviewLow, 2)}, ${fixed(v.reviewHigh, 2)})`),
            ),
          ),
        ),
      ),
    );
  }

  function detail(v: ModelSummary): HTMLElement {
    return h(
      'section',
      { class: 'detail', id: 'model-detail', 'data-version': v.version },
      h(
        'div',
        { class: 'detail-head' },
        h(
          'h2',
          {},
          `${v.version} · ${v.architecture.toLowerCase()} · ${v.history.length} epoch${v.history.length === 1 ? '' : 's'}`,
        ),
        isAdmin && !v.isProduction ? promoteButton(v) : null,
      ),
      v.notes ? h('p', { class: 'muted' }, v.notes) : null,
      h(
        'div',
        { class: 'charts' },
        chart(
          'chart-training-curves',
          v.charts.trainingCurvesUrl,
          'Training and validation loss and accuracy per epoch',
          'wide',
        ),
        chart('chart-roc', v.charts.rocUrl, 'ROC curve on the test split'),
        chart('chart-pr', v.charts.prUrl, 'Precision-recall curve on the test split'),
        v.testMetrics ? confusion(v.testMetrics) : null,
      ),
    );
  }

  function promoteButton(v: ModelSummary): HTMLElement {
    const dialog = h(
      'dialog',
      { id: 'promote-dialog' },
      h('h2', {}, `Promote ${v.version}?`),
      h(
        'p',
        { id: 'promote-question' },
        productionVersion
          ? `${v.version} will replace ${productionVersion}, the production version now, for every prediction that names no version.`
          : `${v.version} will become the production version; none is set now.`,
      ),
      h(
        'form',
        { method: 'dialog', class: 'buttons' },
        h('button', { value: 'cancel', type: 'submit' }, 'Cancel'),
        h(
          'button',
          { value: 'promote', type: 'submit', class: 'primary', id: 'promote-confirm' },
          `Promote ${v.version}`,
        ),
      ),
    );
    dialog.addEventListener('close', () => {
      if (dialog.returnValue !== 'promote') return;
      status.textContent = `Promoting ${v.version}…`;
      promoteModel(client, v.version, productionVersion)
        .then(load)
        .catch((error: unknown) => {
          if (error instanceof ApiError && error.code === 'CONFLICT') {
            load()
              .then(() => {
                status.textContent = `${error.message}`;
                status.classList.add('error');
              })
              .catch(fail);
          } else fail(error);
        });
    });
    return h(
      'div',
      {},
      h(
        'button',
        { type: 'button', class: 'primary', id: 'promote', onclick: () => dialog.showModal() },
        `Promote ${v.version} to production`,
      ),
      dialog,
    );
  }

  load().catch(fail);
}

function chart(id: string, url: string | null | undefined, alt: string, size = ''): HTMLElement {
  return h(
    'figure',
    { class: `chart ${size}` },
    url
      ? h('img', { id, src: url, alt })
      : h('p', { class: 'muted', id }, `No chart: ${alt.toLowerCase()} is not available for this version.`),
  );
}

function confusion(m: VersionMetrics): HTMLElement {
  const cell = (n: number, kind: string) => h('td', { class: kind }, String(n));
  return h(
    'figure',
    { class: 'chart confusion' },
    h('figcaption', {}, `Confusion matrix, test split (threshold ${fixed(m.threshold, 2)})`),
    h(
      'table',
      { id: 'confusion-matrix' },
      h('thead', {}, h('tr', {}, h('th', {}, ''), h('th', {}, 'Called ALL'), h('th', {}, 'Called normal'))),
      h(
        'tbody',
        {},
        h(
          'tr',
          {},
          h('th', { scope: 'row' }, 'ALL'),
          cell(m.truePositives, 'hit'),
          cell(m.falseNegatives, 'miss'),
        ),
        h(
          'tr',
          {},
          h('th', { scope: 'row' }, 'Normal'),
          cell(m.falsePositives, 'miss'),
          cell(m.trueNegatives, 'hit'),
        ),
      ),
    ),
  );
}
