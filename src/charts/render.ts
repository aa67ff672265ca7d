import type { TopLevelSpec } from 'vega-lite';

type Vega = typeof import('vega');
type VegaLite = typeof import('vega-lite');

let libraries: Promise<{ vega: Vega; vegaLite: VegaLite }> | null = null;

/**
 * vega and vega-lite are ES modules (about 0.5 s to load); they are imported on the first chart, so
 * the API's cold start and every process that never registers a model do not pay for them.
 */
function loadLibraries(): Promise<{ vega: Vega; vegaLite: VegaLite }> {
  libraries ??= Promise.all([import('vega'), import('vega-lite')]).then(([vega, vegaLite]) => ({
    vega,
    vegaLite,
  }));
  return libraries;
}

/**
 * Compiles a Vega-Lite spec and renders it headless to a standalone SVG document. The 'none' renderer
 * builds the scene graph without a canvas, so no native module is needed; text widths are estimated.
 */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const { vega, vegaLite } = await loadLibraries();
  const compiled = vegaLite.compile(spec).spec;
  // Specs carry their data inline; refusing loads keeps a chart from ever reaching the network or disk.
  const loader = vega.loader();
  loader.load = async (uri: string) => {
    throw new Error(`Charts render from inline data only (tried to load ${uri}).`);
  };
  const view = new vega.View(vega.parse(compiled), { renderer: 'none', loader });
  try {
    const svg = await view.toSVG();
    return svg.startsWith('<?xml') ? svg : `<?xml version="1.0" encoding="UTF-8"?>\n${svg}`;
  } finally {
    view.finalize();
  }
}
