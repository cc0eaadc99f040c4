/** The parts of npm `sip` (0.0.6, plain JavaScript) the media application and its tests use. */
declare module "sip" {
  export interface SipUri {
    schema?: string;
    user?: string;
    password?: string;
    host: string;
    port?: number;
    params: Record<string, string | null | undefined>;
    headers?: Record<string, string>;
  }
  export interface NameAddr {
    name?: string;
    uri: string;
    params: Record<string, string | null | undefined>;
  }
  export interface Via {
    version?: string;
    protocol?: string;
    host?: string;
    port?: number;
    params: Record<string, string | null | undefined>;
  }
  export interface SipHeaders {
    via?: Via[];
    to?: NameAddr;
    from?: NameAddr;
    "call-id"?: string;
    cseq?: { seq: number; method: string };
    contact?: NameAddr[] | "*";
    route?: NameAddr[];
    "record-route"?: NameAddr[];
    "content-type"?: string;
    "content-length"?: number;
    [name: string]: unknown;
  }
  export interface SipMessage {
    method?: string;
    uri?: string;
    version?: string;
    status?: number;
    reason?: string;
    headers: SipHeaders;
    content?: string;
  }
  export interface Remote {
    protocol: string;
    address: string;
    port: number;
  }
  export interface SipStack {
    send(message: SipMessage, onResponse?: (response: SipMessage) => void): void;
    destroy(): void;
    hostname(): string;
  }
  export interface StackOptions {
    address?: string;
    port?: number;
    publicAddress?: string;
    hostname?: string;
    udp?: boolean;
    tcp?: boolean;
    logger?: { recv?(m: SipMessage, remote: Remote): void; send?(m: SipMessage, target: Remote): void; error?(e: unknown): void };
  }
  export function create(options: StackOptions, onRequest: (request: SipMessage, remote: Remote) => void): SipStack;
  export function makeResponse(request: SipMessage, status: number, reason?: string, extension?: { headers?: Partial<SipHeaders>; content?: string }): SipMessage;
  export function parseUri(uri: string): SipUri;
  export function stringifyUri(uri: SipUri): string;
  export function stringify(message: SipMessage): string;
  export function parse(text: string): SipMessage;
  export function generateBranch(): string;
  export function copyMessage(message: SipMessage, deep?: boolean): SipMessage;
}
