// Types for taskguard's Node client (index.js: worker.js + enqueue.js).

/** A row of taskguard.task as claim() hands it to the worker. */
export interface ClaimedTask<A = any> {
    id: string;            // bigint, as node-postgres returns it
    task_name: string;
    args: A;
    attempts: number;
    queue: string;
}

export interface HandlerContext<A = any> {
    task: ClaimedTask<A>;
    attempt: number;
    /** Aborted when a heartbeat finds the lease taken over. */
    signal: AbortSignal;
    worker: Worker;
    /** Extend the lease now: true, false (taken over) or null (connection lost). */
    heartbeat(): Promise<boolean | null>;
}

/** Return a value to store it as the task's result; throw to fail the task. */
export type Handler<A = any, R = unknown> = (args: A, ctx: HandlerContext<A>) => R | Promise<R>;

/** Errors may name their own type and add to the failure's context. */
export interface TaskguardError extends Error {
    errorType?: string;
    context?: Record<string, unknown>;
    code?: string;
    status?: number;
}

export interface WorkerOptions {
    /** A `pg` module to use (default: require('pg')). */
    pg?: unknown;
    queue?: string;
    workerName?: string;
    handlers?: Record<string, Handler>;
    concurrency?: number;
    batch?: number;
    completeBatch?: number;
    piggyback?: boolean;
    prefetch?: number;
    leaseSeconds?: number;
    heartbeatMs?: number;
    /** ms between polls; -1: no LISTEN, no poll. */
    pollInterval?: number;
    maxClaimsInFlight?: number;
    onError?: (err: unknown) => void;
    onLog?: (message: string) => void;
    onTaskStart?: (task: ClaimedTask) => void;
    connectionString?: string;
    /** Tried in turn on each reconnect; the first that accepts writes is kept. */
    connectionStrings?: string[];
    poolSize?: number;
    reconnectMinMs?: number;
    reconnectMaxMs?: number;
    /** A `pg` Pool of your own (not ended by stop()). */
    pool?: unknown;
}

export interface WorkerStats {
    claimed: number;
    succeeded: number;
    failed: number;
    lost: number;
    released: number;
    claimCalls: number;
    completeCalls: number;
    piggybacked: number;
    reconnects: number;
}

export class Worker {
    constructor(opts: WorkerOptions);
    readonly queue: string;
    readonly name: string;
    readonly stats: WorkerStats;
    /** A `pg` Pool. */
    readonly pool: any;
    start(): Promise<this>;
    /** Graceful: no more claims, running handlers finish, unstarted tasks are released. */
    stop(): Promise<void>;
    /** Resolves when a claim came back short and every claimed task is settled. */
    whenIdle(): Promise<void>;
    wake(): void;
}

export function errorType(err: unknown): string;
export function errorContext(err: unknown, task: ClaimedTask): Record<string, unknown>;
export function isConnectionLost(err: unknown): boolean;
export function noHandlerError(taskName: string, workerName: string): TaskguardError;

export type Priority = 'DEFERRED' | 'LOW' | 'MEDIUM' | 'HIGH' | 'CRITICAL';

/** Anything with node-postgres' query(text, values): a Client, a Pool, a PoolClient. */
export interface Queryable {
    query(text: string, values?: unknown[]): Promise<{ rows: any[] }>;
}

export interface EnqueueManyOptions {
    queue?: string;
    /** A Date, or ms from now. */
    runAt?: Date | number;
    priority?: Priority;
    tenant?: string;
    customerTier?: string;
    service?: string;
    /** What a flow limit of scope flow_key counts (docs/flow.md). */
    flowKey?: string;
}

export interface EnqueueOptions extends EnqueueManyOptions {
    idempotencyKey?: string;
    maxAttempts?: number;
    /** Replace the args of the unclaimed task with the same tenant, name and key. */
    debounceKey?: string;
    /** An interval ('30 seconds') or ms: run_at moves to now + debounce. */
    debounce?: string | number;
    /** An interval or ms: never past the first enqueue + debounceMax. */
    debounceMax?: string | number;
}

/** Enqueue one task; its id (a string: bigint). */
export function enqueue(db: Queryable, taskName: string, args?: unknown,
                        opts?: EnqueueOptions): Promise<string>;
/** Enqueue many tasks of one name in one statement; their ids in order. */
export function enqueueMany(db: Queryable, taskName: string, argsList: unknown[],
                            opts?: EnqueueManyOptions): Promise<string[]>;
/** Pause a queue (or one task type in it); true if it was not paused yet. */
export function pause(db: Queryable, queue: string, taskName?: string | null): Promise<boolean>;
/** Resume what pause(queue, taskName) paused; true if it was paused. */
export function resume(db: Queryable, queue: string, taskName?: string | null): Promise<boolean>;
