"""Charts without a plotting library.

``layout`` places everything once, in pixels: axes, ticks (times in the zone people read),
series, threshold lines, shaded spans and legends, as a ``Drawing`` of three primitives
(polygons, polylines, text).  ``svg`` and ``png`` only draw those primitives: the HTML report
inlines the SVG (crisp, text selectable, no file beside it), Slack and the console get the PNG.
"""
