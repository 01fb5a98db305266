/**
 * A uPlot chart as a React component. The plot is created once per shape
 * (series, theme, size class) and fed new data with setData, so live updates
 * never rebuild it. Optional overlays: a "now" line and decision markers
 * (drawn on the canvas, with a tooltip on hover; the same decisions are
 * listed as text beside the chart for keyboard and screen-reader users).
 */
import { useEffect, useRef, useState } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { Cols, Marker } from '../lib/shape';
import { nearestMarker } from '../lib/shape';
import { clock, compact } from '../lib/format';
import { cssVar, useTheme } from '../theme';

export interface SeriesSpec {
  label: string;
  color: string; // a CSS variable name, e.g. "--c-actual"
  width?: number;
  dash?: number[];
  stepped?: boolean;
  /** Draw no line (a band edge). */
  hidden?: boolean;
  points?: boolean;
}

export interface ChartProps {
  label: string;
  data: Cols;
  series: SeriesSpec[];
  /** Pairs of 0-based indexes into `series`: [upper, lower], filled with `color`. */
  bands?: { upper: number; lower: number; color: string }[];
  height: number;
  xRange?: [number, number];
  nowMs?: number;
  markers?: Marker[];
  yFormat?: (v: number) => string;
  sparkline?: boolean;
  testId?: string;
}

function withAlpha(color: string, alpha: number): string {
  // Colours are hex (#rrggbb) in the theme.
  const m = /^#([0-9a-f]{6})$/i.exec(color.trim());
  if (!m) return color;
  const n = parseInt(m[1], 16);
  return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${alpha})`;
}

export function Chart(props: ChartProps) {
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const live = useRef(props);
  live.current = props;
  const theme = useTheme();
  const [tip, setTip] = useState<{ x: number; m: Marker } | null>(null);

  const shapeKey = JSON.stringify([props.series, props.bands, props.height, props.sparkline, theme]);

  useEffect(() => {
    const el = host.current;
    if (!el) return;
    const p = live.current;
    const fg = cssVar('--fg-muted');
    const grid = cssVar('--grid');
    const yFormat = p.yFormat ?? ((v: number) => compact(v));
    const series: uPlot.Series[] = [
      { value: (_u, v) => (v === null ? '—' : clock(v)) },
      ...p.series.map((s) => {
        const c = cssVar(s.color);
        const out: uPlot.Series = {
          label: s.label,
          stroke: s.hidden ? 'transparent' : c,
          width: s.width ?? 2,
          dash: s.dash,
          spanGaps: false,
          points: { show: s.points ?? false, size: 5, fill: c },
          value: (_u, v) => (v === null || v === undefined ? '—' : yFormat(v)),
        };
        if (s.stepped) out.paths = uPlot.paths.stepped!({ align: 1 });
        return out;
      }),
    ];
    const bands: uPlot.Band[] = (p.bands ?? []).map((b) => ({
      series: [b.upper + 1, b.lower + 1],
      fill: withAlpha(cssVar(b.color), theme === 'dark' ? 0.28 : 0.2),
    }));
    const overlay = (u: uPlot) => {
      const cur = live.current;
      const ctx = u.ctx;
      const { left, top, width, height } = u.bbox;
      ctx.save();
      const drawnX: number[] = [];
      let nowDrawn = false;
      const markers = cur.markers ?? [];
      // Guide lines only while they stay sparse (about one per 24 px).
      const lines = markers.length * 24 * devicePixelRatio <= width;
      for (const m of markers) {
        const x = Math.round(u.valToPos(m.t, 'x', true));
        if (x < left || x > left + width) continue;
        drawnX.push(Math.round(u.valToPos(m.t, 'x')));
        const col = cssVar(`--tone-${m.tone}`);
        if (lines) {
          ctx.strokeStyle = withAlpha(col, 0.45);
          ctx.lineWidth = 1 * devicePixelRatio;
          ctx.setLineDash([2 * devicePixelRatio, 3 * devicePixelRatio]);
          ctx.beginPath();
          ctx.moveTo(x, top);
          ctx.lineTo(x, top + height);
          ctx.stroke();
          ctx.setLineDash([]);
        }
        const s = 6 * devicePixelRatio;
        ctx.fillStyle = col;
        ctx.beginPath();
        ctx.moveTo(x - s, top);
        ctx.lineTo(x + s, top);
        ctx.lineTo(x, top + s * 1.4);
        ctx.closePath();
        ctx.fill();
      }
      if (cur.nowMs !== undefined) {
        const x = Math.round(u.valToPos(cur.nowMs, 'x', true));
        if (x >= left && x <= left + width) {
          nowDrawn = true;
          const col = cssVar('--now');
          ctx.strokeStyle = col;
          ctx.lineWidth = (cur.sparkline ? 1 : 2) * devicePixelRatio;
          ctx.beginPath();
          ctx.moveTo(x, top);
          ctx.lineTo(x, top + height);
          ctx.stroke();
          ctx.fillStyle = col;
          if (!cur.sparkline) {
            ctx.font = `${12 * devicePixelRatio}px system-ui, sans-serif`;
            // Label on the side with room (the line sits at the right edge when no forecast runs past it).
            const right = x + 40 * devicePixelRatio < left + width;
            ctx.textAlign = right ? 'left' : 'right';
            ctx.fillText('now', x + (right ? 4 : -4) * devicePixelRatio, top + 14 * devicePixelRatio);
          }
        }
      }
      ctx.restore();
      // What was drawn, for end-to-end tests and the row-to-screen benchmark.
      const ds = el.dataset;
      ds.now = nowDrawn ? '1' : '0';
      ds.markers = String(drawnX.length);
      ds.markerX = drawnX.join(',');
      const col1 = (u.data[1] ?? []) as (number | null | undefined)[];
      ds.sum = String(col1.reduce<number>((a, v) => a + (v ?? 0), 0));
      ds.bands = (cur.bands ?? [])
        .map((b) => {
          const hi = (u.data[b.upper + 1] ?? []) as (number | null | undefined)[];
          const lo = (u.data[b.lower + 1] ?? []) as (number | null | undefined)[];
          return hi.filter((v, i) => v !== null && v !== undefined && lo[i] !== null && lo[i] !== undefined).length;
        })
        .join(',');
      ds.drawnAt = String(Date.now());
    };
    const opts: uPlot.Options = {
      width: el.clientWidth || 300,
      height: p.height,
      ms: 1,
      pxAlign: 0,
      series,
      bands,
      legend: { show: !p.sparkline },
      cursor: p.sparkline ? { show: false } : { drag: { x: true, y: false }, points: { size: 6 } },
      select: p.sparkline ? { show: false, left: 0, top: 0, width: 0, height: 0 } : undefined,
      padding: p.sparkline ? [2, 0, 2, 0] : [12, 12, 0, 4],
      scales: {
        x: {
          time: true,
          range: (_u, min, max) => live.current.xRange ?? [min, max],
        },
        y: {
          range: (_u, min, max) => {
            const lo = Math.min(0, Number.isFinite(min) ? min : 0);
            const hi = Number.isFinite(max) && max > lo ? max * 1.08 : lo + 1;
            return [lo, hi];
          },
        },
      },
      axes: p.sparkline
        ? [{ show: false }, { show: false }]
        : [
            { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 }, font: '12px system-ui, sans-serif' },
            {
              stroke: fg,
              grid: { stroke: grid, width: 1 },
              ticks: { stroke: grid, width: 1 },
              font: '12px system-ui, sans-serif',
              size: 56,
              values: (_u, vals) => vals.map((v) => (v === null ? '' : yFormat(v))),
            },
          ],
      hooks: {
        draw: [overlay],
        setCursor: [
          (u) => {
            const cur = live.current;
            if (!cur.markers || cur.markers.length === 0 || u.cursor.left === undefined || u.cursor.left < 0) {
              setTip(null);
              return;
            }
            const t = u.posToVal(u.cursor.left, 'x');
            const tol = Math.abs(u.posToVal(u.cursor.left + 8, 'x') - t);
            const m = nearestMarker(cur.markers, t, tol);
            setTip(m ? { x: u.valToPos(m.t, 'x') + u.bbox.left / devicePixelRatio, m } : null);
          },
        ],
      },
    };
    const u = new uPlot(opts, [p.data.t, ...p.data.cols] as uPlot.AlignedData, el);
    plot.current = u;
    const ro = new ResizeObserver(() => {
      const w = el.clientWidth;
      if (w > 0 && Math.abs(w - u.width) > 1) u.setSize({ width: w, height: live.current.height });
    });
    ro.observe(el);
    return () => {
      ro.disconnect();
      u.destroy();
      plot.current = null;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [shapeKey]);

  useEffect(() => {
    const u = plot.current;
    if (!u) return;
    u.setData([props.data.t, ...props.data.cols] as uPlot.AlignedData, true);
  }, [props.data, props.xRange?.[0], props.xRange?.[1], props.nowMs, props.markers]);

  return (
    <div className={`chart${props.sparkline ? ' spark' : ''}`} data-testid={props.testId}>
      <div ref={host} role="img" aria-label={props.label} className="chart-host" />
      {tip && (
        <div className="chart-tip" role="tooltip" style={{ left: `${tip.x}px` }} data-testid="decision-tooltip">
          <strong>{tip.m.title}</strong>
          <span>{clock(tip.m.t)}</span>
          <span>{tip.m.detail}</span>
        </div>
      )}
    </div>
  );
}
