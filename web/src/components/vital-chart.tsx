import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

import type { Band, Marker } from '../vitals-series';

interface Props {
  title: string;
  xs: number[];
  /** null = no task (the agent was contained): the line breaks instead of bridging the gap. */
  ys: (number | null)[];
  band: Band | null;
  markers: Marker[];
  format: (v: number) => string;
  /** Lowest top of the y axis. */
  minTop?: number;
  /** Current deviation of this metric, shown in the title. */
  deviation?: number;
}

const MARKER_COLOUR: Readonly<Record<Marker['kind'], string>> = { infection: '#dc2626', healing: '#2563eb', healed: '#16a34a' };

function lastValue(ys: (number | null)[]): number | null {
  for (let i = ys.length - 1; i >= 0; i--) if (ys[i] !== null) return ys[i];
  return null;
}

/**
 * One vital over time: the samples as a line, the baseline's normal band as a
 * shaded strip with its mean, and vertical lines where the infection was
 * detected and healing acted. Drawing happens in uPlot hooks reading `live`,
 * so new samples only call setData.
 */
export function VitalChart({ title, xs, ys, band, markers, format, minTop = 0, deviation }: Props) {
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const live = useRef({ band, markers, minTop });
  live.current = { band, markers, minTop };

  useEffect(() => {
    const el = host.current!;
    const drawBand = (u: uPlot) => {
      const b = live.current.band;
      if (!b) return;
      const { ctx, bbox } = u;
      const yHigh = u.valToPos(b.high, 'y', true);
      const yLow = u.valToPos(b.low, 'y', true);
      const yMean = u.valToPos(b.mean, 'y', true);
      ctx.save();
      ctx.fillStyle = 'rgba(22, 163, 74, 0.12)';
      ctx.fillRect(bbox.left, Math.min(yHigh, yLow), bbox.width, Math.abs(yLow - yHigh));
      ctx.strokeStyle = 'rgba(22, 163, 74, 0.7)';
      ctx.setLineDash([4, 4]);
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(bbox.left, yMean);
      ctx.lineTo(bbox.left + bbox.width, yMean);
      ctx.stroke();
      ctx.restore();
    };
    const drawMarkers = (u: uPlot) => {
      const { ctx, bbox } = u;
      const [min, max] = [u.scales.x.min ?? 0, u.scales.x.max ?? 0];
      const px = devicePixelRatio;
      const lineH = 13 * px;
      ctx.save();
      ctx.font = `${11 * px}px system-ui, sans-serif`;
      ctx.textBaseline = 'top';
      // Labels of nearby markers would overwrite each other: each takes the first text row that is free at its x.
      const rowEnds: number[] = [];
      for (const m of live.current.markers) {
        if (m.ts < min || m.ts > max) continue;
        const x = u.valToPos(m.ts, 'x', true);
        ctx.strokeStyle = MARKER_COLOUR[m.kind];
        ctx.lineWidth = (m.kind === 'infection' ? 2 : 1) * px;
        ctx.setLineDash(m.kind === 'healing' ? [3 * px, 3 * px] : []);
        ctx.beginPath();
        ctx.moveTo(x, bbox.top);
        ctx.lineTo(x, bbox.top + bbox.height);
        ctx.stroke();
        const w = ctx.measureText(m.label).width + 4 * px;
        // Flip to the left of the line near the right edge.
        const left = x + w + 3 * px > bbox.left + bbox.width ? x - w - 3 * px : x + 3 * px;
        let row = rowEnds.findIndex((end) => end <= left);
        if (row < 0) row = rowEnds.length;
        rowEnds[row] = left + w;
        const y = bbox.top + 2 * px + row * lineH;
        // A white halo keeps the label readable over the series without hiding it behind a box.
        ctx.setLineDash([]);
        ctx.lineWidth = 3 * px;
        ctx.strokeStyle = 'rgba(255, 255, 255, 0.9)';
        ctx.strokeText(m.label, left + 2 * px, y);
        ctx.fillStyle = MARKER_COLOUR[m.kind];
        ctx.fillText(m.label, left + 2 * px, y);
      }
      ctx.restore();
    };
    const opts: uPlot.Options = {
      width: Math.max(200, el.clientWidth),
      height: 140,
      legend: { show: false },
      cursor: { drag: { x: false, y: false }, points: { size: 5 } },
      scales: {
        x: { time: true },
        y: {
          range: (_u, dataMin, dataMax) => {
            // Always show the whole normal band, so "outside it" is visible at a glance. Vitals are never negative.
            const b = live.current.band;
            const lo = Math.min(dataMin ?? 0, b ? b.low : Infinity);
            const hi = Math.max(dataMax ?? 0, b ? b.high : -Infinity, live.current.minTop);
            const pad = (hi - lo) * 0.08 || Math.max(Math.abs(hi) * 0.1, 1e-6);
            return [Math.max(0, lo - pad), hi + pad];
          },
        },
      },
      series: [{}, { label: title, stroke: '#1d4ed8', width: 1.5, points: { show: true, size: 3, fill: '#1d4ed8' } }],
      axes: [
        { stroke: '#475569', grid: { stroke: '#e2e8f0' }, ticks: { stroke: '#cbd5e1' } },
        { stroke: '#475569', size: 56, grid: { stroke: '#e2e8f0' }, ticks: { stroke: '#cbd5e1' }, values: (_u, vals) => vals.map((v) => format(v)) },
      ],
      hooks: { drawClear: [drawBand], draw: [drawMarkers] },
    };
    const u = new uPlot(opts, [xs, ys], el);
    plot.current = u;
    const ro = new ResizeObserver(() => u.setSize({ width: Math.max(200, el.clientWidth), height: 140 }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      u.destroy();
      plot.current = null;
    };
    // The plot is created once; data and overlays are updated below.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  useEffect(() => {
    plot.current?.setData([xs, ys]);
  }, [xs, ys, band, markers]);

  const last = lastValue(ys);
  return (
    <figure class="chart" data-metric={title} data-points={ys.filter((y) => y !== null).length} data-band={band ? '1' : '0'} data-markers={markers.map((m) => m.kind).join(',')}>
      <figcaption>
        <strong>{title}</strong>
        {last !== null && <span> · now {format(last)}</span>}
        {band && (
          <span class="muted">
            {' '}
            · normal {format(band.low)}–{format(band.high)}
          </span>
        )}
        {deviation !== undefined && deviation > 0 && <span class={deviation >= 2.5 ? 'dev hot' : 'dev'}> · {deviation.toFixed(1)}σ</span>}
      </figcaption>
      <div ref={host} class="chart-host" />
    </figure>
  );
}
