/* The residents' lookup: the community's own streets (no tiles), a marker where the resident
   is, and GET /v1/nearby on the same server. Names are set as text, never as HTML. */
(function () {
  "use strict";
  function data(id) { return JSON.parse(document.getElementById(id).textContent); }
  var streets = data("linli-streets"), start = data("linli-start"), words = data("linli-words");
  var map = L.map("map", {zoomControl: true, attributionControl: true}).setView(start, 16);
  var base = L.geoJSON(streets, {style: {color: "#8a939c", weight: 1.2, opacity: 0.9},
                                 interactive: false}).addTo(map);
  map.attributionControl.addAttribution(streets.features[0].properties.attribution);
  var here = L.circleMarker(start, {radius: 8, color: "#fff", weight: 2, fillColor: "#d62728",
                                    fillOpacity: 1}).addTo(map).bindTooltip(words.here);
  if (!map.getBounds().intersects(base.getBounds())) { map.fitBounds(base.getBounds()); }
  var found = L.layerGroup().addTo(map), route = L.layerGroup().addTo(map);
  var list = document.getElementById("places"), status = document.getElementById("status");

  function show(place, item) {
    route.clearLayers();
    var line = place.route.coordinates.map(function (p) { return [p[1], p[0]]; });
    L.polyline(line, {color: "#2ca02c", weight: 5, opacity: 0.85, className: "linli-route"})
      .addTo(route);
    Array.prototype.forEach.call(list.children, function (li) { li.classList.remove("chosen"); });
    item.classList.add("chosen");
  }

  function lookup() {
    var category = document.getElementById("category").value;
    var at = here.getLatLng();
    var query = "lat=" + at.lat.toFixed(6) + "&lon=" + at.lng.toFixed(6) +
                (category ? "&category=" + encodeURIComponent(category) : "");
    status.textContent = words.busy;
    list.textContent = "";
    found.clearLayers();
    route.clearLayers();
    fetch("/v1/nearby?" + query, {headers: {"Accept": "application/json"}})
      .then(function (response) {
        return response.json().then(function (body) { return [response.status, body]; });
      })
      .then(function (answer) {
        var code = answer[0], body = answer[1];
        if (code === 429) { status.textContent = words.wait; return; }
        if (code !== 200) { status.textContent = String(body.detail || body.title || code); return; }
        if (!body.places.length) { status.textContent = words.none; return; }
        status.textContent = words.found.replace("{n}", body.places.length);
        body.places.forEach(function (place, i) {
          var item = document.createElement("li");
          var name = document.createElement("span");
          name.className = "name";
          name.textContent = place.name;
          item.appendChild(name);
          item.appendChild(document.createTextNode(" · " + place.category_name + " · " +
            words.minutes.replace("{m}", place.minutes)));
          var how = document.createElement("span");
          how.className = "directions";
          how.textContent = place.directions;
          item.appendChild(how);
          item.addEventListener("click", function () { show(place, item); });
          list.appendChild(item);
          L.circleMarker([place.lat, place.lon], {radius: 6, color: "#7b3fa0",
                                                  fillColor: "#7b3fa0", fillOpacity: 0.9})
            .bindTooltip(place.name + " · " + place.minutes + "′").addTo(found)
            .on("click", function () { show(place, item); });
          if (i === 0) { show(place, item); }
        });
      })
      .catch(function () { status.textContent = words.wait; });
  }

  map.on("click", function (e) { here.setLatLng(e.latlng); lookup(); });
  document.getElementById("lookup").addEventListener("submit", function (e) {
    e.preventDefault();
    lookup();
  });
}());
