import type { Figure } from '../scenario.ts';
import { goalMet } from './build.ts';
import { formatDuration, formatNumber, formatValue } from './format.ts';
import type { Report, ScenarioOutcome } from './types.ts';

const HEADER = ['| scenario | figure | value | goal | met | baseline | ratio to baseline |', '|---|---|---:|---|:-:|---|---:|'];

function cell(text: string): string {
  return text.replaceAll('|', '\\|').replaceAll('\n', ' ');
}

function figureRow(scenario: string, figure: Figure): string {
  const value = figure.value === null ? (figure.note ?? 'not measured') : formatValue(figure.value, figure.unit);
  const goal = figure.goal ? `${figure.goal.comparison === '<=' ? '≤' : '≥'} ${figure.goal.value} ${figure.unit}` : '';
  const met = goalMet(figure);
  const baseline = figure.baseline ? `${figure.baseline.name}: ${formatValue(figure.baseline.value, figure.unit)}` : figure.isBaseline ? '(is a baseline)' : '';
  const ratio = figure.baseline && figure.value !== null && figure.baseline.value !== 0 ? `×${formatNumber(figure.value / figure.baseline.value)}` : '';
  const label = figure.note && figure.value !== null ? `${figure.label} (${figure.note})` : figure.label;
  return `| ${cell(scenario)} | ${cell(label)} | ${cell(value)} | ${goal} | ${met === undefined ? '' : met ? '✅' : '❌'} | ${cell(baseline)} | ${ratio} |`;
}

function outcomeRows(outcome: ScenarioOutcome): string[] {
  if (outcome.status === 'failed') return [`| ${outcome.name} | ${cell(outcome.title)} | failed: ${cell((outcome.error ?? '').split('\n')[0] ?? '')} | | ❌ | | |`];
  return (outcome.result?.figures ?? []).map((figure) => figureRow(outcome.name, figure));
}

/** More than a tenth of the CPUs busy without us, before or after the run: someone else is using the machine. */
function busy(other: Report['machine']['otherCpuPercent']): boolean {
  return Math.max(other.beforeStart, other.afterEnd) > 10;
}

function summary(report: Report): string {
  const met = report.goals.filter((g) => g.met).length;
  const commit = `\`${report.commit.slice(0, 12)}\`${report.uncommittedChanges ? ' with uncommitted changes' : ''}`;
  const m = report.machine;
  return [
    `${report.date} · commit ${commit} · ${report.quick ? '`--quick` run' : 'full run'} of ${report.scenariosRun.join(', ')} · took ${formatDuration(report.durationSeconds)}`,
    '',
    `Machine: ${m.cpus} CPUs (${m.cpuModel}), ${m.memoryGB} GB, ${m.platform}, kernel ${m.kernel}, Node ${m.node}.`,
    '',
    `Other work on the machine: CPUs ${m.otherCpuPercent.beforeStart} % busy in the second before the run and ${m.otherCpuPercent.afterEnd} % in the second after it; ` +
      `1-minute load average ${m.loadAverage.atStart} at start, ${m.loadAverage.atEnd} at end.` +
      (busy(m.otherCpuPercent) ? ' **The machine was not idle: figures are skewed.**' : ''),
    '',
    `Goals met: ${met} of ${report.goals.length}.`,
  ].join('\n');
}

export function renderMarkdown(report: Report, chartFile: string | undefined): string {
  const notes = report.scenarios.flatMap((o) => o.result?.notes ?? []);
  const failures = report.scenarios.filter((o) => o.status === 'failed');
  return [
    '# Benchmark results',
    '',
    summary(report),
    '',
    '## Figures',
    '',
    ...HEADER,
    ...report.scenarios.flatMap(outcomeRows),
    '',
    ...(failures.length > 0 ? ['## Failures', '', ...failures.map((f) => `### ${f.name}\n\n\`\`\`\n${f.error ?? ''}\n\`\`\`\n`)] : []),
    '## How it was measured',
    '',
    '- Everything runs on this machine over loopback, against a system the bench starts itself (`archipelago start`) on a fresh temporary data directory and free ports.',
    ...notes.map((note) => `- ${note}`),
    '',
    ...(chartFile ? ['## Latency over time', '', `![per-second p50 and p99 latency](${chartFile})`, ''] : []),
  ].join('\n');
}
