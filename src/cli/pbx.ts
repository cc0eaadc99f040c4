import fs from "node:fs";
import path from "node:path";
import { cliArgs } from "./args";
import { StoppingError, Supervisor } from "../pbx/supervisor";

const USAGE = `Usage: npm run pbx

Starts the whole PBX on this machine as one supervised set: the API, Kamailio with
deploy/kamailio/kamailio.cfg and, when installed, rtpengine and the media application. One log
view (each line prefixed with its process), Ctrl-C (SIGINT) or SIGTERM stops every part and exits
0; a part that dies stops the others and exits 1. Prints what a phone needs: the SIP domain, the
demo extension and its password, the SIP address, Kamailio's WebSocket address and the URL of the
softphone page (GET /phone), which registers over it.

Environment (besides the API's, see the README):
  SIP_LISTEN        where phones reach Kamailio, udp:ADDRESS:PORT (default udp:127.0.0.1:5060)
  PBX_WS_PORT       Kamailio's SIP-over-WebSocket listener for browsers, a TCP port on the
                    SIP_LISTEN address (default 8080); the API's PHONE_WS_URL is set to it
                    unless PHONE_WS_URL is given (e.g. a wss:// TLS proxy in front)
  RTPENGINE_NG_PORT rtpengine's ng control port on 127.0.0.1 (default 22222)
  MEDIA_SIP_PORT    the media application's SIP port on 127.0.0.1 (default 5070)
  PBX_DEMO_DOMAIN   the demo tenant's SIP domain (default demo.pbx.test)
  ENGINE_DB_ROLE    with DATABASE_URL: the engine's PostgreSQL role, given a new password at
                    every start (default pbx_engine)
  SIP_CHILDREN      Kamailio's SIP worker processes (default 4)
  KAMAILIO_SHM_MB   Kamailio's shared memory in MB, its -m (default 256; Kamailio's own 64 runs
                    out near 700 REGISTER/s)
Without DATABASE_URL and REDIS_URL, Kamailio reads credentials from the API and posts its events
to it; with them, it reads the view sip_subscriber and writes the Redis stream.
`;

cliArgs(USAGE, {});
// dist/src/cli in a checkout (or a test's build folder inside it): the checkout is the first folder up with the engine's configuration.
let root = __dirname;
while (!fs.existsSync(path.join(root, "deploy/kamailio/kamailio.cfg")) && path.dirname(root) !== root) root = path.dirname(root);
const supervisor = new Supervisor({
  root,
  apiMain: path.join(__dirname, "../main.js"),
  mediaMain: path.join(__dirname, "../media/main.js"),
  env: process.env,
  out: (line) => process.stdout.write(`${line}\n`),
});
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(signal, () => void supervisor.stop(0));
}
supervisor.run().catch((error: unknown) => {
  if (error instanceof StoppingError) return;
  process.stderr.write(`npm run pbx: ${error instanceof Error ? error.message : String(error)}\n`);
  void supervisor.stop(1);
});
void supervisor.done.then((code) => process.exit(code));
