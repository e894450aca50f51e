// The answer of each handler, by name, as its callers receive it: derived from what its run()
// returns (defineHandler keeps that type), never written out again. Renaming a report field
// changes the answer's type, and every renderer or script that reads the old name stops compiling.
// Types only: nothing here is loaded at run time.
import type { DefinedHandler, OkResponse } from './define.js';
import type { HandlerName } from './registry.js';
import type * as demo from './use-cases/demo.js';
import type * as events from './use-cases/events.js';
import type * as exporting from './use-cases/export.js';
import type * as hosts from './use-cases/hosts.js';
import type * as log from './use-cases/log.js';
import type * as matrix from './use-cases/matrix.js';
import type * as migrations from './use-cases/migrations.js';
import type * as replay from './use-cases/replay.js';
import type * as traces from './use-cases/traces.js';
import type * as vms from './use-cases/vms.js';
import type * as life from './use-cases/life.js';
import type * as templates from './use-cases/templates.js';

/** Every use-case module's exports (the handlers among them by their registry names). */
type Exports = typeof hosts &
  typeof vms &
  typeof events &
  typeof log &
  typeof migrations &
  typeof replay &
  typeof demo &
  typeof traces &
  typeof exporting &
  typeof matrix &
  typeof life &
  typeof templates;

/** What the handler called N returns from run(), before it becomes JSON. */
export type RunResultOf<N extends HandlerName> = Exports[N] extends DefinedHandler<infer O> ? O : never;

/** The answer of the handler called N when it completes: { ok: true, ... } as JSON. */
export type ResponseOf<N extends HandlerName> = OkResponse<RunResultOf<N>>;
