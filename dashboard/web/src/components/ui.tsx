/** Small shared pieces: links, states (loading / empty / error), KPI tiles, range picker. */
import { useState, type ReactNode, type MouseEvent } from 'react';
import { navigate } from '../router';
import type { ApiError } from '../lib/api';
import { PRESETS, fromLocalInput, resolveRange, toLocalInput, type TimeRange } from '../lib/time';

export function Link(props: { to: string; children: ReactNode; className?: string; ariaCurrent?: boolean; testId?: string }) {
  const onClick = (e: MouseEvent<HTMLAnchorElement>) => {
    if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(props.to);
  };
  return (
    <a href={props.to} onClick={onClick} className={props.className} aria-current={props.ariaCurrent ? 'page' : undefined} data-testid={props.testId}>
      {props.children}
    </a>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <div className="state loading" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" /> Loading {what}…
    </div>
  );
}

export function Empty({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="state empty" role="status">
      <strong>{title}</strong>
      {children && <p>{children}</p>}
    </div>
  );
}

export function ErrorState({ error, what }: { error: ApiError; what: string }) {
  const hint =
    error.status === 0 || error.status === 502 || error.status === 504
      ? 'The dashboard server is not answering. Check that `prescient dashboard` is running.'
      : error.status === 403
        ? 'Your token does not allow this view (tenant-scoped tokens see only their own tenant\'s traffic).'
        : error.status === 401
          ? 'Your session has ended; sign in again.'
          : error.status >= 500
            ? 'The server could not read the database; it retries on the next update.'
            : '';
  return (
    <div className="state error" role="alert">
      <strong>Could not load {what}</strong>
      <p>{error.message}</p>
      {hint && <p className="muted">{hint}</p>}
    </div>
  );
}

export function Kpi(props: { label: string; value: string; sub?: string; tone?: string; testId?: string }) {
  return (
    <div className={`kpi${props.tone ? ` tone-${props.tone}` : ''}`} data-testid={props.testId}>
      <div className="kpi-label">{props.label}</div>
      <div className="kpi-value">{props.value}</div>
      {props.sub && <div className="kpi-sub">{props.sub}</div>}
    </div>
  );
}

/** 1h / 6h / 24h / 7d buttons and a custom from/to form. */
export function RangePicker({ range, onChange }: { range: TimeRange; onChange: (r: TimeRange) => void }) {
  const [custom, setCustom] = useState(range.kind === 'custom');
  const bounds = resolveRange(range, Date.now());
  const [from, setFrom] = useState(toLocalInput(bounds.from));
  const [to, setTo] = useState(toLocalInput(bounds.to));
  const [err, setErr] = useState<string | null>(null);
  const apply = (e: React.FormEvent) => {
    e.preventDefault();
    const f = fromLocalInput(from);
    const t = fromLocalInput(to);
    if (f === null || t === null) return setErr('Enter both times.');
    if (t <= f) return setErr('“To” must be after “from”.');
    if (t - f > 31 * 86_400_000) return setErr('At most 31 days.');
    setErr(null);
    onChange({ kind: 'custom', from: f, to: t });
  };
  return (
    <div className="range" role="group" aria-label="Time range">
      {PRESETS.map((p) => (
        <button
          key={p}
          type="button"
          className="seg"
          aria-pressed={range.kind === 'preset' && range.preset === p}
          onClick={() => {
            setCustom(false);
            onChange({ kind: 'preset', preset: p });
          }}
        >
          {p}
        </button>
      ))}
      <button type="button" className="seg" aria-pressed={custom || range.kind === 'custom'} aria-expanded={custom} onClick={() => setCustom(!custom)}>
        custom
      </button>
      {custom && (
        <form className="custom-range" onSubmit={apply}>
          <label>
            From <input type="datetime-local" value={from} onChange={(e) => setFrom(e.target.value)} />
          </label>
          <label>
            To <input type="datetime-local" value={to} onChange={(e) => setTo(e.target.value)} />
          </label>
          <button type="submit">Apply</button>
          {err && (
            <span className="field-error" role="alert">
              {err}
            </span>
          )}
        </form>
      )}
    </div>
  );
}

export function Legend({ items }: { items: { label: string; color: string; dash?: boolean; band?: boolean }[] }) {
  return (
    <ul className="legend-keys" aria-hidden="true">
      {items.map((i) => (
        <li key={i.label}>
          <span className={`swatch${i.dash ? ' dash' : ''}${i.band ? ' band' : ''}`} style={{ ['--sw' as string]: `var(${i.color})` }} />
          {i.label}
        </li>
      ))}
    </ul>
  );
}
