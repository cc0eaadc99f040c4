/** npm `rtpengine-client` (plain JavaScript): the ng-protocol client over UDP, as the media application uses it. */
declare module "rtpengine-client" {
  import { EventEmitter } from "node:events";
  export type NgReply = Record<string, unknown> & { result?: string; "error-reason"?: string; sdp?: string; duration?: number };
  type Command = (port: number, host: string, options?: Record<string, unknown>) => Promise<NgReply>;
  export class Client extends EventEmitter {
    constructor(options?: { localPort?: number; localAddress?: string; timeout?: number });
    socket: import("node:dgram").Socket;
    ping: Command;
    offer: Command;
    answer: Command;
    delete: Command;
    query: Command;
    playMedia: Command;
    stopMedia: Command;
    subscribeRequest: Command;
    subscribeAnswer: Command;
    unsubscribe: Command;
  }
}
