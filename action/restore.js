'use strict';
// restore/action.yml: restore the cache (tiercache pull), with no post
// step; save it later with save/action.yml.
const { run } = require('./lib');
const { restore } = require('./cache');

run(() => restore({ withState: false }));
