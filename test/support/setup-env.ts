import "reflect-metadata";
import { trackPid } from "./run";

// This worker is one of the run's processes: a run stopped by a signal stops it (test/support/run.ts).
trackPid(process.pid);
