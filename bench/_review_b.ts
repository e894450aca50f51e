import { handlers } from '/work/main/handlers/index.js';
const ctx = { db: '/tmp/rv/a.db' };
const H = handlers as any;
for (const m of ['m1','m2','m3','m4','m5']) { const r = await H.audit({ migrationId: m }, ctx); console.log(m, r.ok ? JSON.stringify({s:r.audit?.strategy ?? r.strategy, f: (r.audit??r).failure, el:(r.audit??r).trueElapsedNs}) : JSON.stringify(r.error)); }
