import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';

export interface UsagePoint {
  at: string;
  units: number;
  credits: string;
  decisions: number;
}

/**
 * Units used and credits spent per bucket (uPlot; two y axes). Credits are exact decimal strings
 * from the API; they become numbers here only to be drawn. A data table follows for screen readers.
 */
export function UsageChart({ points, bucket }: { points: UsagePoint[]; bucket: string }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = box.current;
    if (!el || points.length === 0) return;
    const data: uPlot.AlignedData = [points.map((p) => Date.parse(p.at) / 1000), points.map((p) => p.units), points.map((p) => Number(p.credits))];
    const size = () => ({ width: Math.max(280, el.clientWidth), height: 260 });
    const plot = new uPlot(
      {
        ...size(),
        title: `Usage per ${bucket}`,
        scales: { x: { time: true }, units: { auto: true }, credits: { auto: true } },
        series: [
          {},
          { label: 'Units used', scale: 'units', stroke: '#1d4ed8', width: 2, fill: 'rgba(29,78,216,0.08)', points: { show: true } },
          { label: 'Credits spent', scale: 'credits', stroke: '#b45309', width: 2, dash: [6, 4], points: { show: true } },
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
      <div ref={box} role="img" aria-label={`Chart of units used and credits spent per ${bucket}: ${total} units in ${points.length} ${bucket}s`} data-testid="usage-chart" />
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
