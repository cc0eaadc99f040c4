import { Foundation1764150000000 } from "./1764150000000-Foundation";
import { Queues1764150100000 } from "./1764150100000-Queues";

/** Every migration, in order. Listed explicitly so the same list works from TypeScript (tests) and compiled JS. */
export const migrations = [Foundation1764150000000, Queues1764150100000];
