// Given / when / then for a decider, with no store: the given events are folded through evolve
// from the initial state, the command is decided on the result, and the events it records (or
// what it throws) are compared. The state the command was decided on must come out unchanged.
import { expect } from 'vitest';
import type { Decider } from '../../machines/decider.js';
import { toJson } from '../../machines/codec.js';

export function deciderSpecification<S, C, E>(decider: Decider<S, C, E>) {
  return (given: E[]) => ({
    when: (command: C) => {
      const state = given.reduce(decider.evolve, decider.initialState());
      const before = toJson(state);
      const handle = () => decider.decide(command, state);
      const untouched = () => expect(toJson(state), 'decide changed the state it was given').toEqual(before);
      return {
        /** the events recorded, each equal to the one expected */
        // biome-ignore lint/suspicious/noThenProperty: given/when/then is the decider tests' language; nothing awaits this object
        then(expected: E[]): E[] {
          const events = handle();
          expect(events).toEqual(expected);
          untouched();
          return events;
        },
        /** the events recorded, passed to a check (for what is worked out from them) */
        thenEvents(check: (events: E[], state: S) => void): E[] {
          const events = handle();
          check(events, state);
          untouched();
          return events;
        },
        /** the command is refused: an error with this name, code and message */
        thenThrows(expected: { name: string; code: string; message?: string | RegExp }): void {
          let error: unknown = null;
          try {
            handle();
          } catch (e) {
            error = e;
          }
          expect(error, 'decide did not throw').toBeInstanceOf(Error);
          const e = error as Error & { code?: string };
          expect({ name: e.name, code: e.code }).toEqual({ name: expected.name, code: expected.code });
          if (expected.message !== undefined) expect(e.message).toMatch(expected.message);
          untouched();
        },
      };
    },
  });
}
