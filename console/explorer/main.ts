/**
 * An offline GraphQL explorer: GraphiQL from npm, bundled by console/build.ts with React, its editors and
 * its fonts, so it loads nothing from the internet (Apollo Sandbox, at GET /graphql, loads from Apollo's
 * CDN and reports telemetry; hospital networks often block both). Served by the local stack at
 * /explorer/ and shipped in the static console build as explorer/.
 */
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import { GraphiQL } from 'graphiql';
import 'graphiql/graphiql.css';
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

/** The API: config.js's apiUrl, resolved against the console's folder (one level up from this page). */
export function explorerApiUrl(location: Location, configured: string | undefined): string {
  return new URL(configured ?? '/graphql', new URL('../', location.href)).toString();
}

const root = document.getElementById('explorer');
if (root) {
  const url = explorerApiUrl(window.location, globalThis.LYMPHOSCOPE_CONSOLE?.apiUrl);
  createRoot(root).render(
    createElement(GraphiQL, {
      fetcher: createGraphiQLFetcher({ url }),
      defaultQuery: DEFAULT_QUERY,
      defaultHeaders: '{}',
      // The key stays in this tab's memory unless the user ticks "persist headers".
      shouldPersistHeaders: false,
      defaultEditorToolsVisibility: 'headers',
    }),
  );
}
