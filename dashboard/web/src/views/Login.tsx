/** Sign-in with an API token (the one-time link from `prescient demo` is handled by the server). */
import { useState } from 'react';
import { ApiError, login } from '../lib/api';

export function Login({ onDone, reason }: { onDone: () => void; reason: string | null }) {
  const [token, setToken] = useState('');
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState<string | null>(null);
  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    if (!token.trim()) return setErr('Paste a token first.');
    setBusy(true);
    setErr(null);
    try {
      await login(token.trim());
      setToken('');
      onDone();
    } catch (x) {
      setErr(x instanceof ApiError ? x.message : 'The dashboard server cannot be reached.');
    } finally {
      setBusy(false);
    }
  };
  return (
    <main className="login" id="main">
      <form onSubmit={submit} className="login-card" aria-labelledby="login-title">
        <h1 id="login-title">
          <span className="logo" aria-hidden="true">◆</span> Prescient
        </h1>
        {reason && <p className="muted">{reason}</p>}
        <label htmlFor="token">API token</label>
        <input
          id="token"
          name="token"
          type="password"
          autoComplete="off"
          autoFocus
          value={token}
          onChange={(e) => setToken(e.target.value)}
          aria-describedby="token-help"
          aria-invalid={err !== null}
        />
        <p id="token-help" className="muted small">
          Create one with <code>prescient token create --name you --role viewer</code>, or open the one-time link that{' '}
          <code>prescient demo</code> prints.
        </p>
        {err && (
          <p className="field-error" role="alert" data-testid="login-error">
            {err}
          </p>
        )}
        <button type="submit" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
