// vega-lite publishes its types only through package.json "exports", which this project's node10 module
// resolution does not read; this points the bare specifier at them.
declare module 'vega-lite' {
  export * from 'vega-lite/build/index';
}
