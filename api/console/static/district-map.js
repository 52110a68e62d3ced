/* The district page's map: the document the API's /v1/district/map gives, drawn by
   LinliDistrictMap (matcher/static/linli-district-map.js) with the vendored Leaflet; nothing
   from outside. */
document.addEventListener("DOMContentLoaded", function () {
  "use strict";
  var element = document.getElementById("district-map");
  var data = document.getElementById("linli-district-data");
  if (element && data && window.LinliDistrictMap) {
    window.LinliDistrictMap.draw(element, JSON.parse(data.textContent));
  }
});
