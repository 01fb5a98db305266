/** The app shell: who is signed in, navigation, the live-stream toggle, theme, and the current view. */
import { useCallback, useEffect, useMemo, useState } from 'react';
import { ApiError, get, logout, type Me } from './lib/api';
import { LiveStream } from './lib/stream';
import { StreamContext, useStream, useStreamState } from './live';
import { useRoute } from './router';
import { setTheme, useTheme } from './theme';
import { Link, Loading, ErrorState } from './components/ui';
import { Login } from './views/Login';
import { Overview } from './views/Overview';
import { Service } from './views/Service';
import { Scaling } from './views/Scaling';
import { Pipeline } from './views/Pipeline';

type Auth = { state: 'checking' } | { state: 'out'; reason: string | null } | { state: 'in'; me: Me } | { state: 'error'; error: ApiError };

export function App() {
  const [auth, setAuth] = useState<Auth>({ state: 'checking' });
  const check = useCallback(() => {
    get<Me>('/me').then(
      (me) => setAuth({ state: 'in', me }),
      (e: unknown) => {
        const err = e instanceof ApiError ? e : new ApiError(0, String(e));
        if (err.status === 401) setAuth({ state: 'out', reason: null });
        else setAuth({ state: 'error', error: err });
      },
    );
  }, []);
  useEffect(check, [check]);

  if (auth.state === 'checking') return <Loading what="your session" />;
  if (auth.state === 'error')
    return (
      <main id="main" className="login">
        <div className="login-card">
          <ErrorState error={auth.error} what="the dashboard" />
          <button type="button" onClick={check}>
            Retry
          </button>
        </div>
      </main>
    );
  if (auth.state === 'out') return <Login onDone={check} reason={auth.reason} />;
  return <Shell me={auth.me} onLogout={() => setAuth({ state: 'out', reason: 'Signed out.' })} />;
}

function Shell({ me, onLogout }: { me: Me; onLogout: () => void }) {
  const stream = useMemo(() => new LiveStream('/api/v1/stream', (u) => new EventSource(u, { withCredentials: true })), []);
  useEffect(() => {
    stream.start();
    return () => stream.pause();
  }, [stream]);
  return (
    <StreamContext.Provider value={stream}>
      <Header me={me} onLogout={onLogout} />
      <main id="main" className="content">
        <Body me={me} />
      </main>
    </StreamContext.Provider>
  );
}

function Body({ me }: { me: Me }) {
  const route = useRoute();
  switch (route.view) {
    case 'overview':
      return <Overview me={me} />;
    case 'service':
      return <Service key={route.service} me={me} service={route.service} range={route.range} />;
    case 'scaling':
      return <Scaling service={route.service} range={route.range} />;
    case 'pipeline':
      return <Pipeline />;
  }
}

function Header({ me, onLogout }: { me: Me; onLogout: () => void }) {
  const route = useRoute();
  const theme = useTheme();
  const stream = useStream();
  const st = useStreamState();
  const scoped = me.tenant !== null;
  const paused = st === 'paused';
  return (
    <header className="top">
      <a className="skip" href="#main">
        Skip to content
      </a>
      <span className="brand">
        <span className="logo" aria-hidden="true">
          ◆
        </span>{' '}
        Prescient
      </span>
      <nav aria-label="Views">
        <Link to="/" ariaCurrent={route.view === 'overview'}>
          Overview
        </Link>
        {!scoped && (
          <>
            <Link to="/scaling" ariaCurrent={route.view === 'scaling'}>
              Scaling
            </Link>
            <Link to="/pipeline" ariaCurrent={route.view === 'pipeline'}>
              Pipeline
            </Link>
          </>
        )}
      </nav>
      <span className="spacer" />
      <span className={`live-dot ${st}`} role="status" aria-live="polite" data-testid="stream-state">
        {st === 'live' ? 'live' : st === 'paused' ? 'paused' : st === 'connecting' ? 'connecting…' : 'reconnecting…'}
      </span>
      <button type="button" onClick={() => (paused ? stream.resume() : stream.pause())} aria-pressed={paused} data-testid="pause">
        {paused ? 'Resume live updates' : 'Pause live updates'}
      </button>
      <button type="button" onClick={() => setTheme(theme === 'dark' ? 'light' : 'dark')} aria-label={`Switch to ${theme === 'dark' ? 'light' : 'dark'} theme`}>
        {theme === 'dark' ? '☀' : '☾'}
      </button>
      <span className="who" data-testid="who">
        {me.name} · {me.role}
        {me.tenant ? ` · tenant ${me.tenant}` : ''}
      </span>
      <button
        type="button"
        onClick={() => {
          stream.pause();
          void logout().finally(onLogout);
        }}
      >
        Sign out
      </button>
    </header>
  );
}
