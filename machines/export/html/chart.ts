// The timeline chart of a migration as inline SVG: each guest clock's error against true time (a
// step function per series; the guest's CLOCK_REALTIME as the line its NTP client makes of it), the
// blackout shaded, the phases along the top, and a pin under the axis at each instant a finding
// cites. Both axes are labelled in the unit their size calls for (ns, µs, ms, s, min, h), and the
// left margin is as wide as the longest tick label, so the labels never run into the axis title.
// A series drawn beneath another with the same values is drawn wider, so it shows as a band
// around the one on top. Coordinates are rounded to 0.1 px, so the same data always gives the
// same file.
import type { ClockSeries } from '../report-data.js';
import { esc } from './page.js';

const W = 1000;
const H = 380;
const M = { right: 16, top: 30, bottom: 46 };
const PALETTE = ['#1f77b4', '#2ca02c', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#bcbd22', '#7f7f7f'];
const KVMCLOCK_COLOUR = '#d62728';
const REALTIME_COLOUR = '#ff7f0e';
/** The width of one character of an 11 px tick label, generously (digits and the minus sign of system-ui) */
const CHAR_PX = 6.6;

export interface ChartInput {
  startNs: number;
  endNs: number;
  blackout: { fromNs: number; toNs: number } | null;
  phases: { name: string; fromNs: number; toNs: number }[];
  series: ClockSeries[];
  /** finding pins: the instant and what is pinned there */
  pins: { timeNs: number; label: string }[];
  /** what the x axis counts from (its unit is added): default 'true time since the migration began' */
  xTitle?: string;
  /** the chart's accessible name */
  title?: string;
}

export const seriesLabel = (s: ClockSeries) =>
  s.clock === 'kvmclock' ? 'kvmclock (vCPU 0)' : s.clock === 'realtime' ? 'guest CLOCK_REALTIME' : `vCPU ${s.vcpu} ${s.clock === 'tsc' ? 'TSC' : 'CNTVCT'}`;
export const seriesColour = (s: ClockSeries, i: number) =>
  s.clock === 'kvmclock' ? KVMCLOCK_COLOUR : s.clock === 'realtime' ? REALTIME_COLOUR : PALETTE[i % PALETTE.length]!;

const r1 = (v: number) => (Math.round(v * 10) / 10).toString();

/** Tick values for [lo, hi]: a 1/2/5 × 10^k step (at least `minStep`) giving about `count` ticks. */
export function ticks(lo: number, hi: number, count = 6, minStep = 0): number[] {
  if (!(hi > lo)) return [lo];
  const raw = Math.max((hi - lo) / count, minStep);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((f) => f * mag).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.round(v / step) * step);
  return out;
}

const UNITS: [number, string][] = [
  [3_600_000_000_000, 'h'],
  [60_000_000_000, 'min'],
  [1_000_000_000, 's'],
  [1_000_000, 'ms'],
  [1_000, 'µs'],
  [1, 'ns'],
];

/** The unit an axis reaching `maxAbs` ns is labelled in: the largest it holds at least one of. */
export function axisUnit(maxAbs: number): { ns: number; name: string } {
  const [ns, name] = UNITS.find(([u]) => maxAbs >= u) ?? UNITS[UNITS.length - 1]!;
  return { ns, name };
}

/** Ticks for [lo, hi] ns at a round step in `unit` (10, 20, 50 h; not 27.8 h), at least 1 ns apart. */
function unitTicks(lo: number, hi: number, unit: { ns: number }): number[] {
  return ticks(lo / unit.ns, hi / unit.ns, 6, 1 / unit.ns).map((v) => v * unit.ns);
}

/** A tick value in ns as its label in `unit`, with as many decimals as the step needs (never "−0"). */
export function tickLabel(ns: number, stepNs: number, unit: { ns: number }): string {
  const decimals = Math.max(0, Math.min(6, -Math.floor(Math.log10(stepNs / unit.ns) + 1e-9)));
  const text = Math.abs(ns / unit.ns).toFixed(decimals);
  return ns < 0 && Number(text) !== 0 ? `\u2212${text}` : text;
}

/** A series' points within [x0, x1]: its value at x0, the points inside, and a line's value at x1 (a line interpolated, a step held). */
function windowed(points: [number, number][], x0: number, x1: number, linear: boolean): [number, number][] {
  const at = (t: number): number | null => {
    let prev: [number, number] | null = null;
    for (const p of points) {
      if (p[0] > t) {
        if (!prev) return null;
        return linear ? prev[1] + ((p[1] - prev[1]) * (t - prev[0])) / (p[0] - prev[0]) : prev[1];
      }
      prev = p;
    }
    return prev ? prev[1] : null;
  };
  const out: [number, number][] = [];
  const first = at(x0);
  if (first !== null) out.push([x0, first]);
  for (const p of points) if (p[0] > x0 && p[0] < x1) out.push(p);
  // a line is cut at x1 where it goes on; a step is held there anyway
  const last = linear ? at(x1) : null;
  if (last !== null && out.length && out[out.length - 1]![0] < x1) out.push([x1, last]);
  return out;
}

/** How many series drawn after each one have its very values (a series hidden under another). */
function coveredBy(series: ClockSeries[]): string[][] {
  const key = (s: ClockSeries) => JSON.stringify(s.points);
  return series.map((s, i) =>
    series
      .slice(i + 1)
      .filter((t) => t.clock !== 'realtime' && s.clock !== 'realtime' && key(t) === key(s))
      .map(seriesLabel),
  );
}

/** The chart: an <svg> with one <path class="series"> per series. */
export function timelineChart(c: ChartInput): string {
  const x0 = c.startNs;
  const x1 = c.endNs > c.startNs ? c.endNs : c.startNs + 1;
  // (each keeps its index in c.series: its colour is the legend's)
  const series = c.series.map((s, index) => ({ ...s, index, points: windowed(s.points, x0, x1, s.clock === 'realtime') })).filter((s) => s.points.length);
  // (a loop, not Math.min(...values): a chart may have more points than a call can take arguments)
  let lo = 0;
  let hi = 0;
  for (const s of series) {
    for (const p of s.points) {
      if (p[1] < lo) lo = p[1];
      if (p[1] > hi) hi = p[1];
    }
  }
  const pad = (hi - lo) * 0.08 || 1_000_000;
  lo -= pad;
  hi += pad;
  // the y axis: its unit, ticks and labels first, so the margin can be as wide as they are
  const yUnit = axisUnit(Math.max(Math.abs(lo), Math.abs(hi)) / 1.08);
  const yt = unitTicks(lo, hi, yUnit);
  const ystep = yt.length > 1 ? yt[1]! - yt[0]! : yUnit.ns;
  const yLabels = yt.map((v) => tickLabel(v, ystep, yUnit));
  const left = Math.max(56, Math.ceil(32 + CHAR_PX * yLabels.reduce((a, l) => Math.max(a, l.length), 0)));
  const pw = W - left - M.right;
  const ph = H - M.top - M.bottom;
  const X = (t: number) => left + ((Math.min(Math.max(t, x0), x1) - x0) / (x1 - x0)) * pw;
  const Y = (v: number) => M.top + ((hi - v) / (hi - lo)) * ph;
  const out: string[] = [];
  const label = esc(c.title ?? 'guest clock error against true time');
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${label}">`);
  out.push(`<rect x="${left}" y="${M.top}" width="${pw}" height="${ph}" fill="#fbfcfd" stroke="#c9ced8"/>`);
  if (c.blackout) {
    const bx = X(c.blackout.fromNs);
    const bw = Math.max(1, X(c.blackout.toNs) - bx);
    out.push(
      `<rect class="blackout" x="${r1(bx)}" y="${M.top}" width="${r1(bw)}" height="${ph}" fill="#39404f" fill-opacity="0.13">` +
        `<title>blackout: ${esc(((c.blackout.toNs - c.blackout.fromNs) / 1e6).toFixed(3))} ms</title></rect>`,
    );
    out.push(`<text x="${r1(bx + bw / 2)}" y="${M.top + 14}" text-anchor="middle">blackout</text>`);
  }
  // phases: boundaries as faint lines, names along the top
  c.phases.forEach((p) => {
    const px = X(p.fromNs);
    out.push(`<line x1="${r1(px)}" x2="${r1(px)}" y1="${M.top}" y2="${M.top + ph}" stroke="#c9ced8" stroke-dasharray="2 3"/>`);
    const wide = X(p.toNs) - px;
    if (wide > 40) out.push(`<text class="phase" x="${r1(px + 3)}" y="${M.top - 8}">${esc(p.name)}</text>`);
  });
  // axes
  yt.forEach((v, i) => {
    const y = Y(v);
    out.push(`<line x1="${left}" x2="${left + pw}" y1="${r1(y)}" y2="${r1(y)}" stroke="${v === 0 ? '#8a93a6' : '#eceef2'}"/>`);
    out.push(`<text class="ytick" x="${left - 6}" y="${r1(y + 4)}" text-anchor="end">${esc(yLabels[i])}</text>`);
  });
  const xUnit = axisUnit(x1 - x0);
  const xt = unitTicks(0, x1 - x0, xUnit);
  const xstep = xt.length > 1 ? xt[1]! - xt[0]! : xUnit.ns;
  for (const d of xt) {
    const x = X(x0 + d);
    out.push(`<line x1="${r1(x)}" x2="${r1(x)}" y1="${M.top + ph}" y2="${M.top + ph + 4}" stroke="#8a93a6"/>`);
    out.push(`<text class="xtick" x="${r1(x)}" y="${M.top + ph + 16}" text-anchor="middle">${esc(tickLabel(d, xstep, xUnit))}</text>`);
  }
  const xTitle = `${c.xTitle ?? 'true time since the migration began'} (${xUnit.name})`;
  out.push(`<text class="xtitle" x="${r1(left + pw / 2)}" y="${H - 6}" text-anchor="middle">${esc(xTitle)}</text>`);
  const yTitle = `error against true time (${yUnit.name})`;
  out.push(`<text class="ytitle" transform="translate(14 ${M.top + ph / 2}) rotate(-90)" text-anchor="middle">${esc(yTitle)}</text>`);
  // the series: steps held to the end of the span (CLOCK_REALTIME a line); one hidden under a
  // later one of the same values is drawn wider, a band around it
  const covered = coveredBy(series);
  series.forEach((s, i) => {
    const pts = s.points;
    let d = `M${r1(X(pts[0]![0]))} ${r1(Y(pts[0]![1]))}`;
    for (const [t, v] of pts.slice(1)) d += s.clock === 'realtime' ? `L${r1(X(t))} ${r1(Y(v))}` : `H${r1(X(t))}V${r1(Y(v))}`;
    d += `H${r1(X(x1))}`;
    const under = covered[i]!;
    const base = s.clock === 'kvmclock' ? 2.5 : s.clock === 'realtime' ? 2.2 : 1.8;
    const width = base + 3 * Math.min(under.length, 3);
    const dash = s.clock === 'kvmclock' ? ' stroke-dasharray="7 4"' : '';
    const title = under.length ? `${seriesLabel(s)} (the same values as ${under.join(', ')}, drawn over it)` : seriesLabel(s);
    const stroke = `stroke="${seriesColour(s, s.index)}" stroke-width="${r1(width)}"${dash}`;
    out.push(`<path class="series" data-series="${esc(`${s.clock}-${s.vcpu}`)}" d="${d}" fill="none" ${stroke}><title>${esc(title)}</title></path>`);
  });
  // finding pins under the axis
  const seen = new Set<string>();
  for (const p of c.pins) {
    if (p.timeNs < x0 || p.timeNs > x1) continue;
    const x = r1(X(p.timeNs));
    const key = `${x}/${p.label}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(`<path class="pin" d="M${x} ${M.top + ph + 20}l-4 8h8z" fill="#c0392b"><title>${esc(p.label)}</title></path>`);
  }
  out.push('</svg>');
  return out.join('\n');
}

/** The legend under the chart, in HTML. */
export function legend(series: ClockSeries[], blackout = true): string {
  const items = series.map(
    (s, i) => `<span><i${s.clock === 'kvmclock' ? ' class="dash"' : ''} style="border-color:${seriesColour(s, i)}"></i>${esc(seriesLabel(s))}</span>`,
  );
  if (blackout) items.push('<span><i style="border-color:#39404f;opacity:.25;border-top-width:10px"></i>blackout</span>');
  return `<div class="legend">${items.join('')}<span style="color:#c0392b">▲ finding</span></div>`;
}
