// Settings of a deployed console. apiUrl: the GraphQL endpoint; a relative URL is resolved against this
// page, so '/graphql' fits a console served by the API's own host (the local stack does this).
globalThis.LYMPHOSCOPE_CONSOLE = { apiUrl: '/graphql' };
