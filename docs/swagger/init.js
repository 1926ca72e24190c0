// Starts Swagger UI on the served spec. Kept out of index.html so the
// page runs under a Content-Security-Policy without 'unsafe-inline'.
window.addEventListener('load', function () {
  window.ui = SwaggerUIBundle({
    url: '/api/v1/openapi.json',
    dom_id: '#swagger-ui',
    deepLinking: true,
    tryItOutEnabled: false,
    withCredentials: true,
    validatorUrl: null
  });
});
