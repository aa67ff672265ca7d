/**
 * The API key lives in sessionStorage: it survives a reload but not the tab, and never reaches a
 * cookie the API would have to defend against cross-site requests.
 */
const STORAGE_KEY = 'lymphoscope.console.session';

export interface Session {
  apiUrl: string;
  apiKey: string;
}

declare global {
  interface Window {
    /** Set by config.js next to index.html; edit that file to point a static deployment at its API. */
    LYMPHOSCOPE_CONSOLE?: { apiUrl?: string };
  }
}

/** The API URL to offer at sign-in: config.js, else the /graphql of the origin serving the console. */
export function defaultApiUrl(): string {
  return new URL(window.LYMPHOSCOPE_CONSOLE?.apiUrl ?? '/graphql', window.location.href).toString();
}

export function loadSession(): Session | null {
  try {
    const stored = JSON.parse(sessionStorage.getItem(STORAGE_KEY) ?? 'null') as Session | null;
    return stored && typeof stored.apiKey === 'string' && typeof stored.apiUrl === 'string' ? stored : null;
  } catch {
    return null;
  }
}

export function saveSession(session: Session): void {
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify(session));
}

export function clearSession(): void {
  sessionStorage.removeItem(STORAGE_KEY);
}
