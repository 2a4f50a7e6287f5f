console.log('objectstore');
