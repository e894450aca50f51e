// The timeline chart of a migration as inline SVG: each guest clock's error against true time (a
// step function per series), the blackout shaded, the phases along the top, and a pin under the
// axis at each instant a finding cites. Coordinates are rounded to 0.1 px, so the same data always
// gives the same file.
import type { ClockSeries } from '../report-data.js';
import { esc } from './page.js';

const W = 1000;
const H = 380;
const M = { left: 84, right: 16, top: 30, bottom: 46 };
const PALETTE = ['#1f77b4', '#2ca02c', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#bcbd22', '#7f7f7f'];
const KVMCLOCK_COLOUR = '#d62728';

export interface ChartInput {
  startNs: number;
  endNs: number;
  blackout: { fromNs: number; toNs: number } | null;
  phases: { name: string; fromNs: number; toNs: number }[];
  series: ClockSeries[];
  /** finding pins: the instant and what is pinned there */
  pins: { timeNs: number; label: string }[];
}

export const seriesLabel = (s: ClockSeries) => (s.clock === 'kvmclock' ? 'kvmclock (vCPU 0)' : `vCPU ${s.vcpu} ${s.clock === 'tsc' ? 'TSC' : 'CNTVCT'}`);
export const seriesColour = (s: ClockSeries, i: number) => (s.clock === 'kvmclock' ? KVMCLOCK_COLOUR : PALETTE[i % PALETTE.length]!);

const r1 = (v: number) => (Math.round(v * 10) / 10).toString();

/** Tick values for [lo, hi]: a 1/2/5 × 10^k step giving about `count` ticks. */
export function ticks(lo: number, hi: number, count = 6): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((f) => f * mag).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.round(v / step) * step);
  return out;
}

/** A duration in ns as a short label (ms with as many decimals as the step needs). */
function msLabel(ns: number, stepNs: number): string {
  const decimals = Math.max(0, Math.min(6, -Math.floor(Math.log10(stepNs / 1e6) + 1e-9)));
  const v = ns / 1e6;
  return `${v < 0 ? '\u2212' : ''}${Math.abs(v).toFixed(decimals)}`;
}

/** The chart: an <svg> with one <path class="series"> per series. */
export function timelineChart(c: ChartInput): string {
  const x0 = c.startNs;
  const x1 = c.endNs > c.startNs ? c.endNs : c.startNs + 1;
  const values = c.series.flatMap((s) => s.points.map((p) => p[1]));
  let lo = Math.min(0, ...values);
  let hi = Math.max(0, ...values);
  const pad = (hi - lo) * 0.08 || 1_000_000;
  lo -= pad;
  hi += pad;
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const X = (t: number) => M.left + ((Math.min(Math.max(t, x0), x1) - x0) / (x1 - x0)) * pw;
  const Y = (v: number) => M.top + ((hi - v) / (hi - lo)) * ph;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="guest clock error against true time">`);
  out.push(`<rect x="${M.left}" y="${M.top}" width="${pw}" height="${ph}" fill="#fbfcfd" stroke="#c9ced8"/>`);
  if (c.blackout) {
    const bx = X(c.blackout.fromNs);
    const bw = Math.max(1, X(c.blackout.toNs) - bx);
    out.push(`<rect class="blackout" x="${r1(bx)}" y="${M.top}" width="${r1(bw)}" height="${ph}" fill="#39404f" fill-opacity="0.13"><title>blackout: ${esc(((c.blackout.toNs - c.blackout.fromNs) / 1e6).toFixed(3))} ms</title></rect>`);
    out.push(`<text x="${r1(bx + bw / 2)}" y="${M.top + 14}" text-anchor="middle">blackout</text>`);
  }
  // phases: boundaries as faint lines, names along the top
  c.phases.forEach((p, i) => {
    const px = X(p.fromNs);
    out.push(`<line x1="${r1(px)}" x2="${r1(px)}" y1="${M.top}" y2="${M.top + ph}" stroke="#c9ced8" stroke-dasharray="2 3"/>`);
    const wide = X(p.toNs) - px;
    if (wide > 40) out.push(`<text class="phase" x="${r1(px + 3)}" y="${M.top - 8 - (i % 2) * 0}">${esc(p.name)}</text>`);
  });
  // axes
  const yt = ticks(lo, hi);
  const ystep = yt.length > 1 ? yt[1]! - yt[0]! : 1e6;
  for (const v of yt) {
    const y = Y(v);
    out.push(`<line x1="${M.left}" x2="${M.left + pw}" y1="${r1(y)}" y2="${r1(y)}" stroke="${v === 0 ? '#8a93a6' : '#eceef2'}"/>`);
    out.push(`<text x="${M.left - 6}" y="${r1(y + 4)}" text-anchor="end">${esc(msLabel(v, ystep))}</text>`);
  }
  const xt = ticks(0, x1 - x0);
  const xstep = xt.length > 1 ? xt[1]! - xt[0]! : 1e6;
  for (const d of xt) {
    const x = X(x0 + d);
    out.push(`<line x1="${r1(x)}" x2="${r1(x)}" y1="${M.top + ph}" y2="${M.top + ph + 4}" stroke="#8a93a6"/>`);
    out.push(`<text x="${r1(x)}" y="${M.top + ph + 16}" text-anchor="middle">${esc(msLabel(d, xstep))}</text>`);
  }
  out.push(`<text x="${M.left + pw / 2}" y="${H - 6}" text-anchor="middle">true time since the migration began (ms)</text>`);
  out.push(`<text transform="translate(14 ${M.top + ph / 2}) rotate(-90)" text-anchor="middle">error against true time (ms)</text>`);
  // the series, as steps held to the end of the span
  c.series.forEach((s, i) => {
    if (!s.points.length) return;
    let d = `M${r1(X(s.points[0]![0]))} ${r1(Y(s.points[0]![1]))}`;
    for (let k = 1; k < s.points.length; k++) d += `H${r1(X(s.points[k]![0]))}V${r1(Y(s.points[k]![1]))}`;
    d += `H${r1(X(x1))}`;
    const dash = s.clock === 'kvmclock' ? ' stroke-dasharray="7 4"' : '';
    out.push(`<path class="series" data-series="${esc(`${s.clock}-${s.vcpu}`)}" d="${d}" fill="none" stroke="${seriesColour(s, i)}" stroke-width="${s.clock === 'kvmclock' ? 2.5 : 1.8}"${dash}><title>${esc(seriesLabel(s))}</title></path>`);
  });
  // finding pins under the axis
  const seen = new Set<string>();
  for (const p of c.pins) {
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
export function legend(series: ClockSeries[]): string {
  return `<div class="legend">${series.map((s, i) => `<span><i${s.clock === 'kvmclock' ? ' class="dash"' : ''} style="border-color:${seriesColour(s, i)}"></i>${esc(seriesLabel(s))}</span>`).join('')}<span><i style="border-color:#39404f;opacity:.25;border-top-width:10px"></i>blackout</span><span style="color:#c0392b">▲ finding</span></div>`;
}
