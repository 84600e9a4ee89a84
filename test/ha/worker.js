'use strict';
// The shipped Node worker (clients/node/worker.js) as the HA test runs it: one
// `nap` handler, a list of connection strings to follow a failover, its
// counters printed as JSON when it stops (SIGTERM).
//   node worker.js QUEUE NAME LEASE_SECONDS DSN [DSN...]
const path = require('path');
const { Worker } = require(path.join(__dirname, '..', '..', 'clients', 'node', 'worker.js'));

const [queue, name, lease, ...dsns] = process.argv.slice(2);
const worker = new Worker({
    connectionStrings: dsns, queue, workerName: name, leaseSeconds: Number(lease),
    concurrency: 2, batch: 1, pollInterval: 500, reconnectMaxMs: 1000,
    onError: (err) => console.error(new Date().toISOString(), err.message),
    onLog: (msg) => console.error(new Date().toISOString(), msg),
    handlers: {
        async nap(args, ctx) {
            await new Promise((resolve) => setTimeout(resolve, args.ms || 10));
            return { by: name, attempt: ctx.attempt };
        },
    },
});
process.on('SIGTERM', async () => {
    await worker.stop();
    console.log(`stats ${JSON.stringify(worker.stats)}`);
    process.exit(0);
});
worker.start().catch((err) => { console.error(err.message); process.exit(1); });
