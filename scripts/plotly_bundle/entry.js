'use strict';
// plotly.js with only the trace types gtmsim's reports draw; build.sh writes the bundle.
// Keep this list, TRACES in build.sh and the reports' figures in step: a trace type missing
// here makes gtmsim embed the whole plotly.js instead (gtmsim/report/plotlyjs.py).
var Plotly = require('plotly.js/lib/core'); // core carries scatter

Plotly.register([
    require('plotly.js/lib/bar'),
    require('plotly.js/lib/box'),
    require('plotly.js/lib/heatmap'),
    require('plotly.js/lib/histogram'),
    require('plotly.js/lib/sankey'),
]);

module.exports = Plotly;
