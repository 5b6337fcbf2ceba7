/** The part of autocannon's API the benchmarks use: the package ships no type declarations. */
declare module 'autocannon' {
  namespace autocannon {
    interface Request {
      method?: string;
      path?: string;
      headers?: Record<string, string>;
      body?: string | Buffer;
    }
    interface Options {
      url: string;
      method?: string;
      connections?: number;
      pipelining?: number;
      /** Seconds. */
      duration?: number;
      headers?: Record<string, string>;
      requests?: Array<{ setupRequest?: (req: Request) => Request }>;
    }
    /** Latency in ms, requests per second. */
    interface Histogram {
      average: number;
      total: number;
      p50: number;
      p99: number;
    }
    interface Result {
      requests: Histogram;
      latency: Histogram;
      errors: number;
      non2xx: number;
    }
  }
  function autocannon(opts: autocannon.Options, done: (err: Error | null, result: autocannon.Result) => void): unknown;
  export = autocannon;
}
