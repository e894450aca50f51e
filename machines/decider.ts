// A decider, as Emmett types it: what a command records is decided from the state alone, and the
// state is the fold of the recorded events. Replay folds the log through the same evolve.

export interface Decider<State, Command, Event> {
  /** The events a command records in a state (none of the state is changed); a refusal is thrown. */
  decide(command: Command, state: State): Event[];
  /** The state after one event (a new state: the one given is left as it was). */
  evolve(state: State, event: Event): State;
  /** The state before the first event. */
  initialState(): State;
}
