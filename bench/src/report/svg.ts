import type { LatencySeries } from '../scenario.ts';

/** A hand-written SVG line chart: per-second p50 (solid) and p99 (dashed) latency of each series, log scale. */

const WIDTH = 960;
const HEIGHT = 460;
const MARGIN = { top: 50, right: 250, bottom: 50, left: 70 };
const COLORS = ['#7f7f7f', '#1f77b4', '#d62728', '#2ca02c', '#9467bd'];

function escape(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

/** A round tick step giving about `target` ticks over [0, max]. */
function tickStep(max: number, target = 6): number {
  const raw = max / target;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((f) => f * power).find((s) => s >= raw);
  return step ?? 10 * power;
}

function linearTicks(max: number): number[] {
  const step = tickStep(max);
  const count = Math.ceil(max / step);
  return Array.from({ length: count + 1 }, (_, i) => Number((i * step).toPrecision(6)));
}

/** 1-2-5 ticks covering [min, max], for the logarithmic latency axis. */
function logTicks(min: number, max: number): number[] {
  const values: number[] = [];
  for (let power = Math.floor(Math.log10(min)); 10 ** power <= max * 10; power++) {
    for (const factor of [1, 2, 5]) values.push(Number((factor * 10 ** power).toPrecision(3)));
  }
  const first = values.findLastIndex((v) => v <= min);
  const last = values.findIndex((v) => v >= max);
  return values.slice(Math.max(0, first), last + 1);
}

interface Scale {
  x(second: number): number;
  y(ms: number): number;
}

function axes(xTicks: number[], yTicks: number[], scale: Scale): string[] {
  const bottom = HEIGHT - MARGIN.bottom;
  const right = WIDTH - MARGIN.right;
  return [
    ...yTicks.map((t) => {
      const y = scale.y(t).toFixed(1);
      return `<line x1="${MARGIN.left}" x2="${right}" y1="${y}" y2="${y}" stroke="#e5e5e5"/><text x="${MARGIN.left - 8}" y="${y}" dy="4" text-anchor="end">${t}</text>`;
    }),
    ...xTicks.map((t) => {
      const x = scale.x(t).toFixed(1);
      return `<line x1="${x}" x2="${x}" y1="${bottom}" y2="${bottom + 5}" stroke="#333"/><text x="${x}" y="${bottom + 20}" text-anchor="middle">${t}</text>`;
    }),
    `<line x1="${MARGIN.left}" x2="${right}" y1="${bottom}" y2="${bottom}" stroke="#333"/>`,
    `<line x1="${MARGIN.left}" x2="${MARGIN.left}" y1="${MARGIN.top}" y2="${bottom}" stroke="#333"/>`,
    `<text x="${(MARGIN.left + right) / 2}" y="${HEIGHT - 10}" text-anchor="middle">seconds into the measured run</text>`,
    `<text transform="translate(18 ${(MARGIN.top + bottom) / 2}) rotate(-90)" text-anchor="middle">latency (ms, log scale)</text>`,
  ];
}

function lines(series: readonly LatencySeries[], scale: Scale): string[] {
  return series.flatMap((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    const points = (pick: (p: LatencySeries['points'][number]) => number): string => s.points.map((p) => `${scale.x(p.second + 0.5).toFixed(1)},${scale.y(pick(p)).toFixed(1)}`).join(' ');
    return [
      `<polyline fill="none" stroke="${color}" stroke-width="2" points="${points((p) => p.p50Ms)}"/>`,
      `<polyline fill="none" stroke="${color}" stroke-width="1.5" stroke-dasharray="6 4" points="${points((p) => p.p99Ms)}"/>`,
    ];
  });
}

function legend(series: readonly LatencySeries[]): string[] {
  const x = WIDTH - MARGIN.right + 15;
  const entries = series.flatMap((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    const y = MARGIN.top + 10 + i * 44;
    return [
      `<line x1="${x}" x2="${x + 24}" y1="${y}" y2="${y}" stroke="${color}" stroke-width="2"/><text x="${x + 30}" y="${y + 4}">${escape(s.name)} p50</text>`,
      `<line x1="${x}" x2="${x + 24}" y1="${y + 18}" y2="${y + 18}" stroke="${color}" stroke-width="1.5" stroke-dasharray="6 4"/><text x="${x + 30}" y="${y + 22}">${escape(s.name)} p99</text>`,
    ];
  });
  return entries;
}

export function renderLatencyChart(title: string, series: readonly LatencySeries[]): string {
  const points = series.flatMap((s) => s.points);
  const maxSecond = Math.max(1, ...points.map((p) => p.second + 1));
  const values = points.flatMap((p) => [p.p50Ms, p.p99Ms]).filter((v) => v > 0);
  const xTicks = linearTicks(maxSecond);
  const yTicks = logTicks(Math.min(1, ...values), Math.max(1, ...values));
  const xMax = xTicks.at(-1)!;
  const [yMin, yMax] = [Math.log10(yTicks[0]!), Math.log10(yTicks.at(-1)!)];
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const scale: Scale = {
    x: (second) => MARGIN.left + (second / xMax) * plotWidth,
    y: (ms) => HEIGHT - MARGIN.bottom - ((Math.log10(Math.max(ms, yTicks[0]!)) - yMin) / (yMax - yMin)) * plotHeight,
  };
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    `<text x="${WIDTH / 2 - MARGIN.right / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${escape(title)}</text>`,
    ...axes(xTicks, yTicks, scale),
    ...lines(series, scale),
    ...legend(series),
    '</svg>',
    '',
  ].join('\n');
}
