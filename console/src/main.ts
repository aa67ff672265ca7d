import type { Client } from '@urql/core';
import { createClient, fetchMe, type Me } from './api';
import { h } from './dom';
import { renderModels } from './models';
import { renderQueue } from './queue';
import { clearSession, loadSession, type Session } from './session';
import { renderSignIn } from './sign-in';
import { renderUpload } from './upload';

/**
 * The console's shell: sign-in, then two pages chosen by the URL hash (#/queue, #/models), so a static
 * host needs no rewrite rules and a reload stays on the page.
 */
const root = document.getElementById('app')!;
let detach: (() => void) | null = null;

function signOut(notice?: string) {
  detach?.();
  detach = null;
  clearSession();
  renderSignIn(root, start, notice);
}

function start(session: Session, me: Me) {
  const client = createClient(session);
  const main = h('main', { id: 'page' });
  const link = (route: string, label: string) => h('a', { href: `#/${route}`, 'data-route': route }, label);
  const nav = h(
    'nav',
    {},
    link('queue', 'Review queue'),
    link('models', 'Models'),
    me.role !== 'PARTNER' ? link('upload', 'Upload') : null,
  );
  const header = h(
    'header',
    {},
    h('span', { class: 'brand' }, 'Lymphoscope'),
    nav,
    h(
      'span',
      { class: 'who' },
      `${me.name} (${me.role.toLowerCase()})`,
      h('button', { type: 'button', class: 'link', id: 'sign-out', onclick: () => signOut() }, 'Sign out'),
    ),
  );
  root.replaceChildren(header, main);

  const expired = () => signOut('Your API key was refused (revoked?). Sign in again.');
  const show = () => {
    detach?.();
    detach = null;
    const hash = window.location.hash;
    const route = hash === '#/models' ? 'models' : hash === '#/upload' ? 'upload' : 'queue';
    nav.querySelectorAll('a').forEach((a) => a.classList.toggle('active', a.dataset.route === route));
    if (route === 'models') renderModels(main, client, me.role === 'ADMIN', expired);
    else if (route === 'upload') renderUpload(main, client, expired);
    else detach = renderQueue(main, client, expired);
  };
  window.onhashchange = show;
  show();
}

async function boot(client: Client, session: Session) {
  try {
    start(session, await fetchMe(client));
  } catch (error) {
    signOut(error instanceof Error ? error.message : String(error));
  }
}

const session = loadSession();
if (session) void boot(createClient(session), session);
else renderSignIn(root, start);
