import { readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Reads a V8 `.cpuprofile` (what `node --cpu-prof` writes) and says where the
 * process spent its CPU: self time per function, self time per package or
 * source folder, and the inclusive time of Fen's own functions (its synchronous
 * call stacks only: time a function spends awaiting is not CPU and not here).
 */
interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileEntry {
  name: string;
  ms: number;
  /** Share of the busy (non-idle) time, in percent. */
  percent: number;
}

export interface ProfileSummary {
  file: string;
  sampledMs: number;
  busyMs: number;
  /** Busy time over the profiled wall time: how much of one core the process used. */
  coreShare: number;
  topSelf: ProfileEntry[];
  byArea: ProfileEntry[];
  fenInclusive: ProfileEntry[];
}

const specialNames = new Set(['(idle)', '(program)', '(garbage collector)', '(root)']);

function relativeUrl(url: string, root: string): string {
  const plain = url.replace(/^file:\/\//, '');
  return plain.startsWith(root) ? path.relative(root, plain) : plain;
}

/** Where a frame lives: a package under node_modules, a folder of Fen's sources, Node's internals, or V8's own entries. */
function areaOf(frame: ProfileNode['callFrame'], root: string): string {
  if (specialNames.has(frame.functionName) && frame.url === '') return frame.functionName;
  const url = relativeUrl(frame.url, root);
  if (url === '') return frame.functionName === '' ? '(native)' : `(native) ${frame.functionName}`;
  const packageMatch = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (packageMatch) return `npm:${packageMatch[1]}`;
  if (url.startsWith('node:')) {
    const internal = /^node:(?:internal\/)?([^/]+(?:\/[^/]+)?)/.exec(url);
    return `node:${internal?.[1]?.replace(/\.js$/, '') ?? url}`;
  }
  const sourceMatch = /^(src\/[^/]+|sdk|bin)/.exec(url);
  return sourceMatch ? `fen:${sourceMatch[1]}` : url;
}

function frameName(frame: ProfileNode['callFrame'], root: string): string {
  const url = relativeUrl(frame.url, root).replace(/^.*node_modules\//, '');
  const name = frame.functionName || '(anonymous)';
  // tsx's transpiled sources report every function on line 0: the file is all there is to say then.
  if (url === '') return name;
  return frame.lineNumber > 0 ? `${name} ${url}:${frame.lineNumber + 1}` : `${name} ${url}`;
}

function top(totals: Map<string, number>, busyMs: number, count: number): ProfileEntry[] {
  return [...totals.entries()]
    .sort((left, right) => right[1] - left[1])
    .slice(0, count)
    .map(([name, micros]) => ({ name, ms: Math.round(micros / 1000), percent: busyMs > 0 ? Math.round((micros / 1000 / busyMs) * 1000) / 10 : 0 }));
}

/**
 * `window` limits the summary to samples taken between two instants of the
 * monotonic clock, in microseconds: V8 stamps samples with CLOCK_MONOTONIC,
 * the clock of process.hrtime() in every process on the machine, so a window
 * measured by the bench picks out the same span in the API's profile.
 */
export function summariseCpuProfile(file: string, root: string, options: { count?: number; window?: { fromUs: number; toUs: number } } = {}): ProfileSummary {
  const count = options.count ?? 12;
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const self = new Map<string, number>();
  const areas = new Map<string, number>();
  const fenInclusive = new Map<string, number>();
  let sampled = 0;
  let idle = 0;
  let sampleAtUs = profile.startTime;
  let firstUs: number | undefined;
  let lastUs = profile.startTime;
  for (let index = 0; index < profile.samples.length; index += 1) {
    sampleAtUs += profile.timeDeltas[index] ?? 0;
    if (options.window && (sampleAtUs < options.window.fromUs || sampleAtUs > options.window.toUs)) continue;
    firstUs ??= sampleAtUs;
    lastUs = sampleAtUs;
    // A sample's time is the gap to the next sample (the last one gets the average).
    const micros = profile.timeDeltas[index + 1] ?? (profile.endTime - profile.startTime) / Math.max(1, profile.samples.length);
    const node = byId.get(profile.samples[index]!);
    if (!node || micros < 0) continue;
    sampled += micros;
    if (node.callFrame.functionName === '(idle)') {
      idle += micros;
      continue;
    }
    const name = frameName(node.callFrame, root);
    self.set(name, (self.get(name) ?? 0) + micros);
    const area = areaOf(node.callFrame, root);
    areas.set(area, (areas.get(area) ?? 0) + micros);
    const seen = new Set<string>();
    for (let current: number | undefined = node.id; current !== undefined; current = parent.get(current)) {
      const frame = byId.get(current)!.callFrame;
      const url = relativeUrl(frame.url, root);
      if (!/^(src|sdk)\//.test(url) || !frame.functionName) continue;
      const key = frameName(frame, root);
      if (seen.has(key)) continue;
      seen.add(key);
      fenInclusive.set(key, (fenInclusive.get(key) ?? 0) + micros);
    }
  }
  const busyMs = (sampled - idle) / 1000;
  const wallMs = firstUs === undefined ? 0 : (lastUs - firstUs) / 1000;
  return {
    file: path.basename(file),
    sampledMs: Math.round(sampled / 1000),
    busyMs: Math.round(busyMs),
    coreShare: wallMs > 0 ? Math.round((busyMs / wallMs) * 100) / 100 : 0,
    topSelf: top(self, busyMs, count),
    byArea: top(areas, busyMs, count),
    fenInclusive: top(fenInclusive, busyMs, count),
  };
}

export function formatProfile(summary: ProfileSummary): string {
  const lines = (entries: ProfileEntry[]) => entries.map((entry) => `    ${String(entry.percent).padStart(5)}%  ${String(entry.ms).padStart(6)} ms  ${entry.name}`).join('\n');
  return [
    `  ${summary.file}: ${summary.busyMs} ms busy of ${summary.sampledMs} ms sampled (${summary.coreShare} of a core)`,
    '  self time by function:',
    lines(summary.topSelf),
    '  self time by package / source folder:',
    lines(summary.byArea),
    "  inclusive time of Fen's own functions (synchronous stacks):",
    lines(summary.fenInclusive),
  ].join('\n');
}
