'use strict';
// save/action.yml: save the cache (tiercache push) in the step itself.
const { run } = require('./lib');
const { saveOnly } = require('./cache');

run(() => saveOnly());
