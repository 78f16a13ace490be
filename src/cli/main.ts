console.log("pipeline: under construction");
