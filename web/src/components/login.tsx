import { useState } from 'preact/hooks';
import { ApiError, type Api } from '../api';

/** Shown when there is no session: paste the operator or viewer token (the CLI also prints a one-time login URL). */
export function Login({ api, onLoggedIn, reason }: { api: Api; onLoggedIn: () => void; reason?: string }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState(reason ?? '');
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      await api.login(token.trim());
      onLoggedIn();
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="login">
      <form class="panel" onSubmit={submit}>
        <h1>Agent Immune</h1>
        <p>Open the login URL printed by <code>immune</code> at start, or paste the operator or viewer token.</p>
        <label>
          Token
          <input type="password" autoFocus autoComplete="off" value={token} onInput={(e) => setToken(e.currentTarget.value)} />
        </label>
        <button class="btn primary" type="submit" disabled={busy || token.trim() === ''}>
          Sign in
        </button>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
      </form>
    </main>
  );
}
