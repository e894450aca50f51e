// The type of a value once it travels as JSON (machines/codec.ts toJson, then JSON.stringify):
// bigints as decimal strings, toJSON() honoured, functions dropped, arrays and objects mapped
// member by member. What a handler's run() returns is JsonOf'd into what its caller receives,
// so a response type follows the report type it came from.

type Fn = (...args: never[]) => unknown;

export type JsonOf<T> = T extends bigint
  ? string
  : T extends string | number | boolean | null | undefined
    ? T
    : T extends { toJSON(): infer J }
      ? JsonOf<J>
      : T extends readonly (infer E)[]
        ? JsonOf<E>[]
        : T extends Fn
          ? never
          : T extends object
            ? { [K in keyof T as T[K] extends Fn ? never : K]: JsonOf<T[K]> }
            : T;
