'use strict';
// The post step of action.yml: save the cache (tiercache push) unless the
// main step hit the primary key.
const { run } = require('./lib');
const { postSave } = require('./cache');

run(() => postSave());
