import { render } from 'preact';
import { Api, ApiError } from './api';
import { App } from './components/app';
import { Login } from './components/login';
import { Controller, ControllerContext } from './controller';
import { adoptEarlyBoot, LiveStore, startLive } from './live';
import './styles.css';

const root = document.getElementById('app')!;
const api = new Api();
let stopLive: (() => void) | null = null;

function showLogin(reason?: string): void {
  stopLive?.();
  stopLive = null;
  render(<Login api={api} reason={reason} onLoggedIn={() => void boot()} />, root);
}

async function logout(): Promise<void> {
  try {
    await api.logout();
  } finally {
    showLogin();
  }
}

async function boot(): Promise<void> {
  // Stream, overview and session start together: one round trip before the first paint, and the
  // stream is open before the overview is computed, so no change falls between the two.
  const store = new LiveStore();
  stopLive?.();
  const early = adoptEarlyBoot();
  stopLive = startLive(api, store, () => showLogin('Your session has ended; sign in again.'), early);
  let role;
  try {
    role = (await api.session(early?.session)).role;
  } catch (e) {
    stopLive();
    stopLive = null;
    if (e instanceof ApiError && e.status === 401) {
      // The server redirects a used or expired one-time link to /#login-expired.
      const expired = location.hash === '#login-expired';
      if (expired) history.replaceState(null, '', '/');
      return showLogin(expired ? 'That login link was already used or has expired: paste the token instead.' : undefined);
    }
    render(
      <p class="error fatal" role="alert">
        Cannot reach the control plane: {String(e instanceof Error ? e.message : e)}. <a href="/">Retry</a>
      </p>,
      root,
    );
    return;
  }
  const ctl = new Controller(api, store, role);
  render(
    <ControllerContext.Provider value={ctl}>
      <App onLogout={() => void logout()} />
    </ControllerContext.Provider>,
    root,
  );
}

void boot();
