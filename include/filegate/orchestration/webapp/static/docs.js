// Starts Swagger UI (served by this app from the installed fastapi-offline package) on the Filegate OpenAPI
// document. A file of its own rather than an inline script, so the docs page's CSP allows scripts from here only.
"use strict";
window.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("swagger-ui");
  window.ui = window.SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    presets: [window.SwaggerUIBundle.presets.apis],
    // The UI's `_token` cookie authenticates "Try it out" calls: same origin, credentials included.
    requestInterceptor: (request) => { request.credentials = "same-origin"; return request; },
  });
});
