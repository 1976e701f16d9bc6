'use strict';
// The main step of action.yml: restore the cache (tiercache pull) and
// record for the post step what to save.
const { run } = require('./lib');
const { restore } = require('./cache');

run(() => restore({ withState: true }));
