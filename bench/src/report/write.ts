import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { REPOSITORY_ROOT } from '../lib/system.ts';
import { renderMarkdown } from './markdown.ts';
import { renderLatencyChart } from './svg.ts';
import type { Report } from './types.ts';

export const RESULTS_DIR = path.join(REPOSITORY_ROOT, 'bench/results');
const CHART_FILE = 'latest-latency.svg';

/** Writes latest.json, latest.md and (when a scenario recorded latency over time) the SVG chart. */
export async function writeReport(report: Report): Promise<{ markdown: string; files: string[] }> {
  await mkdir(RESULTS_DIR, { recursive: true });
  const charted = report.scenarios.find((o) => (o.result?.series?.length ?? 0) > 0);
  const files = [path.join(RESULTS_DIR, 'latest.json'), path.join(RESULTS_DIR, 'latest.md')];
  if (charted?.result?.series) {
    const chart = renderLatencyChart(`${charted.title}: per-second latency`, charted.result.series);
    await writeFile(path.join(RESULTS_DIR, CHART_FILE), chart);
    files.push(path.join(RESULTS_DIR, CHART_FILE));
  } else {
    await rm(path.join(RESULTS_DIR, CHART_FILE), { force: true }); // a chart from an earlier run would not match
  }
  const markdown = renderMarkdown(report, charted ? CHART_FILE : undefined);
  await writeFile(files[0]!, `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(files[1]!, markdown);
  return { markdown, files };
}
