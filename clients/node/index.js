'use strict';
// taskguard for Node: the worker loop (worker.js) and the producer helpers
// (enqueue.js).  Types: index.d.ts.
const worker = require('./worker');
const producer = require('./enqueue');

module.exports = { ...worker, ...producer };
