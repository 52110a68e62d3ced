/* The plan page's map: the document the API's /v1/schedules/{id}/map gives, drawn by
   LinliMap (matcher/static/linli-map.js) with the vendored Leaflet; nothing from outside. */
document.addEventListener("DOMContentLoaded", function () {
  "use strict";
  var element = document.getElementById("plan-map");
  var data = document.getElementById("linli-map-data");
  if (element && data && window.LinliMap) {
    window.LinliMap.draw(element, JSON.parse(data.textContent));
  }
});
