import { ApiError, createClient, fetchMe, type Me } from './api';
import { h } from './dom';
import { defaultApiUrl, saveSession, type Session } from './session';

/** The sign-in form: an API key (and the API's URL, for a console hosted apart from its API). */
export function renderSignIn(
  root: HTMLElement,
  onSignedIn: (session: Session, me: Me) => void,
  notice?: string,
): void {
  const key = h('input', {
    id: 'api-key',
    name: 'api-key',
    type: 'password',
    autocomplete: 'off',
    required: true,
    placeholder: 'lsk_…',
    'aria-describedby': 'sign-in-help',
  });
  const url = h('input', {
    id: 'api-url',
    name: 'api-url',
    type: 'url',
    required: true,
    value: defaultApiUrl(),
  });
  const message = h('p', { class: 'error', role: 'alert', id: 'sign-in-error' }, notice ?? '');
  const button = h('button', { type: 'submit', class: 'primary' }, 'Sign in');

  const form = h(
    'form',
    {
      class: 'card sign-in',
      onsubmit: (event: Event) => {
        event.preventDefault();
        const session: Session = { apiKey: key.value.trim(), apiUrl: url.value.trim() };
        button.disabled = true;
        message.textContent = '';
        fetchMe(createClient(session))
          .then((me) => {
            if (me.role === 'PARTNER') {
              throw new ApiError(
                'Partner keys cannot review cells or see models; use a scientist or admin key.',
                'FORBIDDEN',
              );
            }
            saveSession(session);
            onSignedIn(session, me);
          })
          .catch((error: unknown) => {
            message.textContent = error instanceof Error ? error.message : String(error);
            button.disabled = false;
          });
      },
    },
    h('h1', {}, 'Lymphoscope review console'),
    h(
      'p',
      { id: 'sign-in-help', class: 'muted' },
      'Sign in with a scientist or admin API key. It is kept in this tab only (sessionStorage).',
    ),
    h('label', { for: 'api-key' }, 'API key'),
    key,
    h(
      'details',
      {},
      h('summary', {}, 'API address'),
      h('label', { for: 'api-url' }, 'GraphQL endpoint'),
      url,
    ),
    message,
    button,
  );
  root.replaceChildren(form);
  key.focus();
}
