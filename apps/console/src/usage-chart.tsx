import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';

export interface UsagePoint {
  at: string;
  units: number;
  credits: string;
  decisions: number;
}

const BUCKET_MS = { hour: 3_600_000, day: 86_400_000 } as const;
const BUCKETS = { hour: 168, day: 90 } as const;

/** The whole period (7 days of hours, 90 days of days, UTC), with zero where nothing was used. */
function dense(points: UsagePoint[], bucket: 'hour' | 'day'): UsagePoint[] {
  const step = BUCKET_MS[bucket];
  const last = Math.floor(Date.now() / step) * step;
  const byTime = new Map(points.map((p) => [Date.parse(p.at), p]));
  return Array.from({ length: BUCKETS[bucket] }, (_, i) => {
    const at = last - (BUCKETS[bucket] - 1 - i) * step;
    return byTime.get(at) ?? { at: new Date(at).toISOString(), units: 0, credits: '0', decisions: 0 };
  });
}

/**
 * Units used and credits spent per bucket (uPlot; two y axes). Credits are exact decimal strings
 * from the API; they become numbers here only to be drawn. A data table follows for screen readers.
 */
export function UsageChart({ points, bucket }: { points: UsagePoint[]; bucket: 'hour' | 'day' }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = box.current;
    if (!el || points.length === 0) return;
    const series = dense(points, bucket);
    const data: uPlot.AlignedData = [
      series.map((p) => Date.parse(p.at) / 1000),
      series.map((p) => p.units),
      series.map((p) => Number(p.credits)),
    ];
    const size = () => ({ width: Math.max(280, el.clientWidth), height: 260 });
    const plot = new uPlot(
      {
        ...size(),
        title: `Usage per ${bucket}`,
        scales: { x: { time: true }, units: { auto: true }, credits: { auto: true } },
        series: [
          {},
          { label: 'Units used', scale: 'units', stroke: '#1d4ed8', width: 2, fill: 'rgba(29,78,216,0.08)' },
          { label: 'Credits spent', scale: 'credits', stroke: '#b45309', width: 2, dash: [6, 4] },
        ],
        axes: [{}, { scale: 'units', label: 'units' }, { scale: 'credits', label: 'credits', side: 1, grid: { show: false } }],
      },
      data,
      el,
    );
    const observer = new ResizeObserver(() => plot.setSize(size()));
    observer.observe(el);
    return () => {
      observer.disconnect();
      plot.destroy();
    };
  }, [points, bucket]);
  if (points.length === 0) return <p class="muted">No settled usage in this period yet.</p>;
  const total = points.reduce((sum, p) => sum + p.units, 0);
  return (
    <figure class="chart">
      <div
        ref={box}
        role="img"
        aria-label={`Chart of units used and credits spent per ${bucket}: ${total} units in ${points.length} ${bucket}s`}
        data-testid="usage-chart"
      />
      <details>
        <summary>Show the chart's data as a table</summary>
        <table>
          <caption class="sr-only">Usage per {bucket}</caption>
          <thead>
            <tr>
              <th scope="col">{bucket === 'hour' ? 'Hour' : 'Day'}</th>
              <th scope="col">Units</th>
              <th scope="col">Credits</th>
              <th scope="col">Decisions</th>
            </tr>
          </thead>
          <tbody>
            {points.map((p) => (
              <tr key={p.at}>
                <td>{new Date(p.at).toLocaleString()}</td>
                <td>{p.units}</td>
                <td>{p.credits}</td>
                <td>{p.decisions}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </details>
    </figure>
  );
}
